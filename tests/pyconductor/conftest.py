"""Shared fixtures of the pyconductor tests.

Paths come from the environment CTest sets (tests/pyconductor/CMakeLists.txt):
SYMPHONY_PY_SOURCE (pyconductor/python), SYMPHONY_TEST_EXTENSION (supervisor_test_extension).
Run by hand: PYTHONPATH=build/py/pyconductor:pyconductor/python /usr/bin/python3 -m pytest tests/pyconductor
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, os.environ.get("SYMPHONY_PY_SOURCE", str(ROOT / "pyconductor" / "python")))
