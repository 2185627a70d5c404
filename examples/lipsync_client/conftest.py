"""Make ``lipsync_app`` importable when pytest runs from elsewhere (the project's own tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
