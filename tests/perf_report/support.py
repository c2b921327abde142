"""What the perf-report tests share: the tool (as a module and as a command), the committed
fixture, and fixtures derived from it with known numbers changed."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "scripts" / "perf-report.py"
FIXTURES = REPO / "perf" / "report" / "fixtures"
SAMPLE = FIXTURES / "sample-v2.json"
PYTHON = "/usr/bin/python3"  # the tool's interpreter: Debian's, standard library only


def load_tool() -> ModuleType:
    """scripts/perf-report.py as a module (its name has a '-', so not by import)."""
    spec = importlib.util.spec_from_file_location("perf_report", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["perf_report"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-B", str(TOOL), *args], capture_output=True, text=True,
                          check=False, timeout=120)


def sample_document() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def find_result(document: dict[str, Any], transport: str, mode: str, payload: int,
                pattern: str = "pingpong", fanout: int = 1) -> dict[str, Any]:
    for row in document["results"]:
        if (row["transport"], row["pattern"], row["mode"], row["payload_bytes"],
                row["fanout"]) == (transport, pattern, mode, payload, fanout):
            return row
    raise KeyError(f"no {transport} {pattern} {mode} {payload} row in the fixture")


class TempDirTest(unittest.TestCase):
    """A test with its own directory, holding derived fixtures (with the .hgrm files beside them)
    and the tool's output."""

    def setUp(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="perf-report-test."))
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write_fixture(self, edit: Optional[Callable[[dict[str, Any]], None]] = None,
                      name: str = "run.json") -> Path:
        """The sample with `edit` applied to a deep copy, written next to a copy of its hgrm/."""
        document = copy.deepcopy(sample_document())
        if edit is not None:
            edit(document)
        if not (self.dir / "hgrm").exists():
            shutil.copytree(FIXTURES / "hgrm", self.dir / "hgrm")
        path = self.dir / name
        path.write_text(json.dumps(document, indent=1), encoding="utf-8")
        return path

    def report_for(self, json_path: Path, *extra: str) -> str:
        """Runs the tool (tables only unless extra says otherwise) and returns report.md."""
        out = self.dir / "out"
        done = run_tool(str(json_path), "--out", str(out), *extra)
        self.assertEqual(done.returncode, 0, done.stderr)
        return (out / "report.md").read_text(encoding="utf-8")


def table_row(markdown: str, first_cell: str) -> list[str]:
    """The cells of the first table row whose first cell is `first_cell`."""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starting with {first_cell!r}")


def section(markdown: str, title: str) -> str:
    """The text from the heading that ends with `title` to the next heading."""
    lines = markdown.splitlines()
    for start, line in enumerate(lines):
        if line.startswith("#") and line.rstrip().endswith(title):
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")),
                       len(lines))
            return "\n".join(lines[start:end])
    raise AssertionError(f"no heading ending with {title!r}")
