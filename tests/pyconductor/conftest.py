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

import itertools

import pytest

EXTENSION = os.environ.get(
    "SYMPHONY_TEST_EXTENSION",
    str(ROOT / "build" / "py" / "tests" / "supervisor" / "supervisor_test_extension"))
ASAN = os.environ.get("SYMPHONY_PY_ASAN") == "1"
_names = itertools.count()


def need_module():
    """The compiled module, or skip (pure-Python suites run without a build)."""
    return pytest.importorskip("symphony_ipc", reason="symphony_ipc is not built / not on PYTHONPATH")


def bus_name() -> str:
    # unique per process and test: other engineers' test runs share this machine's /dev/shm
    return f"pyt{os.getpid()}x{next(_names)}"


def manifest(ext_id: str, *args: str, instances: int = 1, restart: str = "immediate") -> dict:
    if not os.access(EXTENSION, os.X_OK):
        pytest.skip(f"test extension not built: {EXTENSION}")
    return {"id": ext_id, "version": "1.0.0", "executable": EXTENSION, "args": list(args),
            "instances": instances, "restart": {"policy": restart}, "start_timeout_ms": 30000}


def bus_config() -> dict:
    return {"bus": bus_name(), "stop_grace_ms": 1000, "kill_grace_ms": 200}
