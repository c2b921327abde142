"""--update-readme: the text between the markers is replaced (and only that), the plots are
copied and linked relative to the README, a second run changes nothing, and a file without
exactly one pair of markers is refused untouched."""

from __future__ import annotations

import sys
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import TempDirTest, find_result, run_tool  # noqa: E402

BEGIN = "<!-- perf-matrix:begin -->"
END = "<!-- perf-matrix:end -->"
BEFORE = "# Project\n\nSome text the lead wrote.\n\n## Performance\n\n"
AFTER = "\n\n## Next section\n\nMore text.\n"


class UpdateReadme(TempDirTest):
    def setUp(self) -> None:
        super().setUp()
        self.json = self.write_fixture()
        self.readme = self.dir / "README.md"
        self.readme.write_text(BEFORE + BEGIN + "\nold table\n" + END + AFTER, encoding="utf-8")

    def update(self, json_path: Path, *extra: str) -> None:
        done = run_tool(str(json_path), "--out", str(self.dir / "out"),
                        "--update-readme", str(self.readme), *extra)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("updated", done.stdout)

    def test_section_replaced_and_the_rest_kept(self) -> None:
        self.update(self.json)
        text = self.readme.read_text(encoding="utf-8")
        self.assertTrue(text.startswith(BEFORE + BEGIN + "\n"))
        self.assertTrue(text.endswith("\n" + END + AFTER))
        self.assertNotIn("old table", text)
        inside = text[text.index(BEGIN):text.index(END)]
        self.assertIn("### Targets (issue #5)", inside)
        self.assertIn("| ring-spsc ≤ 1.5x floor (busy, 64 B, p50) | 1.54x |", inside)
        self.assertIn("#### ping-pong: one-way latency (round trip / 2); busy", inside)
        self.assertIn("AMD EPYC 7B13 (2 cores; ping on cpu 0, pong on cpu 1)", inside)

    def test_plots_copied_beside_the_readme_and_linked_relative_to_it(self) -> None:
        self.update(self.json)
        text = self.readme.read_text(encoding="utf-8")
        for name in ("latency-vs-payload-busy.svg", "latency-vs-payload-blocking.svg",
                     "percentiles-64B-busy.svg"):
            self.assertTrue((self.dir / "docs" / "perf" / name).is_file(), name)
            self.assertIn(f"](docs/perf/{name})", text)

    def test_plots_dir_elsewhere_gets_a_relative_link(self) -> None:
        self.update(self.json, "--readme-plots", str(self.dir / "elsewhere" / "plots"))
        self.assertIn("](elsewhere/plots/percentiles-64B-busy.svg)",
                      self.readme.read_text(encoding="utf-8"))

    def test_second_run_changes_nothing(self) -> None:
        self.update(self.json)
        first = self.readme.read_text(encoding="utf-8")
        first_plot = (self.dir / "docs" / "perf" / "latency-vs-payload-busy.svg").read_bytes()
        self.update(self.json)
        self.assertEqual(self.readme.read_text(encoding="utf-8"), first)
        self.assertEqual((self.dir / "docs" / "perf" / "latency-vs-payload-busy.svg")
                         .read_bytes(), first_plot)

    def test_another_run_replaces_the_previous_section_whole(self) -> None:
        self.update(self.json)
        first = self.readme.read_text(encoding="utf-8")

        def slower_ring(document: dict[str, Any]) -> None:
            find_result(document, "ring-spsc", "busy", 64)["ratio_to_floor"] = 1.2
        self.update(self.write_fixture(slower_ring, name="other.json"))
        second = self.readme.read_text(encoding="utf-8")
        self.assertIn("| ring-spsc ≤ 1.5x floor (busy, 64 B, p50) | 1.20x |", second)
        self.assertEqual(second.count(BEGIN), 1)
        self.assertEqual(second.count("### Targets (issue #5)"), 1)
        self.update(self.json)
        self.assertEqual(self.readme.read_text(encoding="utf-8"), first)


class RefusedReadme(TempDirTest):
    def assert_refused(self, text: str, expected: str) -> None:
        readme = self.dir / "README.md"
        readme.write_text(text, encoding="utf-8")
        done = run_tool(str(self.write_fixture()), "--out", str(self.dir / "out"),
                        "--update-readme", str(readme))
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
        self.assertIn(expected, done.stderr)
        self.assertEqual(readme.read_text(encoding="utf-8"), text)  # untouched
        self.assertFalse((self.dir / "out").exists())  # refused before writing anything
        self.assertFalse((self.dir / "docs").exists())

    def test_no_markers(self) -> None:
        self.assert_refused("# Project\n", f"marker {BEGIN} not found")

    def test_only_the_end_marker(self) -> None:
        self.assert_refused(f"# Project\n{END}\n", f"marker {BEGIN} not found")

    def test_two_begin_markers(self) -> None:
        self.assert_refused(f"{BEGIN}\n{BEGIN}\n{END}\n", f"marker {BEGIN} found 2 times")

    def test_end_before_begin(self) -> None:
        self.assert_refused(f"{END}\n{BEGIN}\n", f"{END} comes before {BEGIN}")

    def test_check_readme_alone_says_yes_or_refuses(self) -> None:
        readme = self.dir / "README.md"
        readme.write_text(f"{BEGIN}\n{END}\n", encoding="utf-8")
        done = run_tool("--check-readme", str(readme))
        self.assertEqual((done.returncode, done.stderr), (0, ""))
        readme.write_text("# no markers\n", encoding="utf-8")
        done = run_tool("--check-readme", str(readme))
        self.assertEqual(done.returncode, 1)
        self.assertIn(f"marker {BEGIN} not found", done.stderr)
        self.assertEqual(run_tool().returncode, 2)  # neither a JSON file nor --check-readme

    def test_missing_readme_file(self) -> None:
        done = run_tool(str(self.write_fixture()), "--out", str(self.dir / "out"),
                        "--update-readme", str(self.dir / "nope.md"))
        self.assertEqual(done.returncode, 1)
        self.assertEqual(done.stderr.strip(),
                         f"perf-report: error: {self.dir / 'nope.md'}: no such file "
                         "(--update-readme)")


if __name__ == "__main__":
    unittest.main()
