"""The tool on files symphony-perf itself wrote (fixtures/quick-run: scripts/perf.sh --quick on
the 2-vCPU VM while other builds ran, so its numbers are noise): every measured row in its
table, every skipped row listed, the three plots valid."""

from __future__ import annotations

import json
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import FIXTURES, TempDirTest, run_tool, section, table_row  # noqa: E402
from test_plots import PLOTS, svg_texts  # noqa: E402

RUN = FIXTURES / "quick-run" / "results.json"
TITLES = {"pingpong": "ping-pong: one-way latency (round trip / 2)",
          "throughput": "throughput: one-way stream, first send to last receive"}


class QuickRunFromTheHarness(TempDirTest):
    def setUp(self) -> None:
        super().setUp()
        self.results = json.loads(RUN.read_text(encoding="utf-8"))["results"]
        done = run_tool(str(RUN), "--out", str(self.dir))
        self.assertEqual(done.returncode, 0, done.stderr)
        self.report = (self.dir / "report.md").read_text(encoding="utf-8")

    def test_every_measured_row_is_in_its_table(self) -> None:
        measured = [r for r in self.results if not r["skipped"]]
        self.assertGreater(len(measured), 30)
        for row in measured:
            table = section(self.report, f"{TITLES[row['pattern']]}; {row['mode']}")
            self.assertEqual(table_row(table, row["transport"])[1], "64 B"
                             if row["transport"] != "floor" else "8 B", row)

    def test_every_skipped_row_is_listed_with_its_reason(self) -> None:
        skipped = section(self.report, "Skipped (not plotted)")
        rows = [r for r in self.results if r["skipped"]]
        self.assertTrue(rows)
        for row in rows:
            self.assertIn(f"| {row['transport']} | {row['pattern']} | {row['mode']} | 64 B | "
                          f"{row['skipped']} |", skipped)

    def test_the_three_plots_are_valid_svg(self) -> None:
        for name in PLOTS:
            self.assertIn("ring-spsc", svg_texts(self.dir / name), name)
        self.assertIn("floor (8 B)", svg_texts(self.dir / "percentiles-64B-busy.svg"))


if __name__ == "__main__":
    unittest.main()
