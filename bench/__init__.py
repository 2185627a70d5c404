"""Speed and memory benchmarks: ``python -m bench`` or ``nox -s bench`` (see README.md)."""
