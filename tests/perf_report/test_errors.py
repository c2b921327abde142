"""Every bad input is one line on stderr naming the file and field, exit status 1, no traceback
and no report written."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import PYTHON, TOOL, TempDirTest, run_tool  # noqa: E402


class Errors(TempDirTest):
    def assert_error(self, json_path: Path, expected: str, *extra: str) -> None:
        out = self.dir / "out"
        done = run_tool(str(json_path), "--out", str(out), *extra)
        self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
        lines = done.stderr.splitlines()
        self.assertEqual(len(lines), 1, done.stderr)
        self.assertTrue(lines[0].startswith("perf-report: error: "), lines[0])
        self.assertIn(expected, lines[0])
        self.assertFalse((out / "report.md").exists())

    def assert_fixture_error(self, edit: Callable[[dict[str, Any]], None], expected: str) -> None:
        self.assert_error(self.write_fixture(edit), expected, "--no-plots")

    def write_text(self, text: str) -> Path:
        path = self.dir / "bad.json"
        path.write_text(text, encoding="utf-8")
        return path

    def test_missing_file(self) -> None:
        self.assert_error(self.dir / "absent.json", "absent.json: no such file")

    def test_not_json(self) -> None:
        self.assert_error(self.write_text("symphony-perf: table, not JSON\n"),
                          "bad.json: not valid JSON: Expecting value at line 1 column 1")

    def test_truncated_json(self) -> None:
        self.assert_error(self.write_text('{"schema_version": 2, "machine": {'),
                          "bad.json: not valid JSON")

    def test_nan_is_not_json(self) -> None:
        self.assert_error(self.write_text('{"schema_version": NaN}'),
                          "not valid JSON: NaN is not a JSON number")

    def test_top_level_not_an_object(self) -> None:
        self.assert_error(self.write_text("[]"), "bad.json: the top level is not a JSON object")

    def test_schema_version_1_refused(self) -> None:
        self.assert_fixture_error(lambda d: d.update(schema_version=1),
                                  "schema_version is 1, this tool reads 2")

    def test_schema_version_missing(self) -> None:
        self.assert_fixture_error(lambda d: d.pop("schema_version"),
                                  "schema_version is null, this tool reads 2")

    def test_machine_missing(self) -> None:
        self.assert_fixture_error(lambda d: d.pop("machine"), "run.json: field 'machine' is missing")

    def test_machine_field_missing(self) -> None:
        self.assert_fixture_error(lambda d: d["machine"].pop("git_commit"),
                                  "run.json: machine: field 'git_commit' is missing")

    def test_run_field_wrong_type(self) -> None:
        self.assert_fixture_error(lambda d: d["run"].update(repeats="5"),
                                  "run.json: run: field 'repeats' should be an integer, not \"5\"")

    def test_bool_is_not_a_count(self) -> None:
        self.assert_fixture_error(lambda d: d["machine"].update(cores=True),
                                  "machine: field 'cores' should be an integer, not true")

    def test_result_field_missing(self) -> None:
        self.assert_fixture_error(lambda d: d["results"][3].pop("p9999_ns"),
                                  "run.json: results[3]: field 'p9999_ns' is missing")

    def test_result_number_wrong_type(self) -> None:
        self.assert_fixture_error(lambda d: d["results"][0].update(p50_ns="55"),
                                  "results[0]: field 'p50_ns' should be a number or null")

    def test_unknown_pattern_and_mode(self) -> None:
        self.assert_fixture_error(lambda d: d["results"][0].update(pattern="burst"),
                                  "results[0]: pattern 'burst' is not one of pingpong, ")
        self.assert_fixture_error(lambda d: d["results"][1].update(mode="lazy"),
                                  "results[1]: mode 'lazy' is not one of busy, blocking")

    def test_transport_not_described(self) -> None:
        self.assert_fixture_error(lambda d: d["transports"].pop(0),
                                  "results[0]: transport 'floor' is not described in")

    def test_measured_row_without_spread(self) -> None:
        self.assert_fixture_error(lambda d: d["results"][0].update(spread=None),
                                  "results[0]: field 'spread' should be an object")

    def test_missing_hgrm_file(self) -> None:
        def point_elsewhere(document: dict[str, Any]) -> None:
            document["results"][0]["hgrm"] = "hgrm/gone.hgrm"
        self.assert_error(self.write_fixture(point_elsewhere),
                          "hgrm/gone.hgrm: no such file (named by a result's \"hgrm\")")

    def test_malformed_hgrm_row(self) -> None:
        path = self.write_fixture()
        (self.dir / "hgrm" / "uds-pingpong-busy-64B.hgrm").write_text(
            "       Value     Percentile TotalCount 1/(1-Percentile)\n\n 12.0 0.5 abc 2.0\n",
            encoding="utf-8")
        self.assert_error(path, "uds-pingpong-busy-64B.hgrm:3: not an .hgrm row")

    def test_hgrm_row_with_two_columns(self) -> None:
        path = self.write_fixture()
        (self.dir / "hgrm" / "uds-pingpong-busy-64B.hgrm").write_text("12.0 0.5\n",
                                                                       encoding="utf-8")
        self.assert_error(path, "uds-pingpong-busy-64B.hgrm:1: not an .hgrm row")

    def test_gnuplot_missing(self) -> None:
        path = self.write_fixture()
        empty_bin = self.dir / "bin"
        empty_bin.mkdir()
        done = subprocess.run([PYTHON, "-B", str(TOOL), str(path), "--out", str(self.dir / "out")],
                              capture_output=True, text=True, check=False, timeout=60,
                              env={**os.environ, "PATH": str(empty_bin)})
        self.assertEqual(done.returncode, 1)
        self.assertEqual(done.stderr.strip(), "perf-report: error: gnuplot not found: install the "
                         "Debian package gnuplot-nox (scripts/setup.sh does), or pass --no-plots")

    def test_bad_argument_is_a_usage_error(self) -> None:
        done = run_tool()
        self.assertEqual(done.returncode, 2)
        self.assertIn("usage: perf-report.py", done.stderr)


if __name__ == "__main__":
    unittest.main()
