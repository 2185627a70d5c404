"""Media the mock makes and inspects with PyAV.

Nothing is imported here: PyAV is heavy, so callers import ``placeholder`` or ``probe`` when they
first need them.
"""
