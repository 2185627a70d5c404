"""The CPU reference lip-sync: audio to mouth openness, sync-mode timelines, mouth tracking and
rendering. Plain Python (numpy, PyAV, OpenCV); no web framework, nothing downloaded at run time.
"""
