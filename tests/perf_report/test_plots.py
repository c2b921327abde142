"""The plots: valid SVG files drawn by gnuplot, one line per transport that has data, the
skipped rows left out, the data taken from the right rows and .hgrm files, and linked from
report.md."""

from __future__ import annotations

import sys
import unittest
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import FIXTURES, SAMPLE, TempDirTest, load_tool  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"
PLOTS = ("latency-vs-payload-busy.svg", "latency-vs-payload-blocking.svg",
         "percentiles-64B-busy.svg")


def svg_texts(path: Path) -> set[str]:
    """Every text element of a valid SVG document (the legend's titles among them)."""
    root = ElementTree.parse(path).getroot()
    if root.tag != SVG + "svg":
        raise AssertionError(f"{path}: root element is {root.tag}, not svg")
    return {"".join(t.itertext()).strip() for t in root.iter(SVG + "text")}


class PlotFiles(TempDirTest):
    def setUp(self) -> None:
        super().setUp()
        self.report = self.report_for(self.write_fixture())
        self.out = self.dir / "out"

    def test_three_valid_svg_files_linked_from_the_report(self) -> None:
        for name in PLOTS:
            self.assertTrue(svg_texts(self.out / name), name)
            self.assertIn(f"]({name})", self.report)

    def test_busy_plot_has_each_transport_with_busy_rows_and_no_skipped_one(self) -> None:
        texts = svg_texts(self.out / "latency-vs-payload-busy.svg")
        for name in ("floor", "ring-spsc", "ring-mpmc", "topic-native", "iceoryx-raw",
                     "zmq-ipc", "uds", "boost-mq", "boost-spsc"):
            self.assertIn(name, texts)
        for absent in ("topic-iceoryx", "control-rr", "handoff"):  # skipped / blocking only
            self.assertNotIn(absent, texts)
        self.assertTrue({"8 B", "64 B", "4 KiB", "1 MiB", "64 MiB"} <= texts)  # payload tics

    def test_blocking_plot_leaves_the_skipped_boost_spsc_out(self) -> None:
        texts = svg_texts(self.out / "latency-vs-payload-blocking.svg")
        self.assertTrue({"ring-spsc", "topic-native", "control-rr", "handoff", "uds"} <= texts)
        self.assertNotIn("boost-spsc", texts)

    def test_percentile_plot_has_one_line_per_hgrm_file(self) -> None:
        texts = svg_texts(self.out / "percentiles-64B-busy.svg")
        with_hgrm = {p.name.split("-pingpong")[0] for p in (FIXTURES / "hgrm").glob("*.hgrm")}
        self.assertEqual(len(with_hgrm), 7)
        self.assertTrue(with_hgrm <= texts, with_hgrm - texts)
        self.assertNotIn("ring-mpmc", texts)  # a 64 B busy row without an .hgrm file
        self.assertTrue({"90%", "99.9%"} <= texts)


class PlotData(TempDirTest):
    def setUp(self) -> None:
        super().setUp()
        self.tool = load_tool()
        self.perf = self.tool.load_perf_run(SAMPLE)

    def test_latency_series_are_the_p50_of_each_payload(self) -> None:
        plot = self.tool.latency_vs_payload_plot(self.perf, "busy")
        ring = next(s for s in plot.series if s.title == "ring-spsc")
        self.assertEqual(ring.points, [(8.0, 80.0), (64.0, 85.0), (4096.0, 95.0),
                                       (1048576.0, 120.0), (67108864.0, 160.0)])

    def test_percentile_series_are_the_hgrm_rows_without_the_infinite_last(self) -> None:
        path = FIXTURES / "hgrm" / "ring-spsc-pingpong-busy-64B.hgrm"
        points = self.tool.read_hgrm(path)
        self.assertEqual((points[0].value_ns, points[0].percentile, points[0].inverse),
                         (70.0, 0.0, 1.0))
        self.assertEqual((points[-1].value_ns, points[-1].percentile), (184000.0, 1.0))
        plot = self.tool.percentile_plot(self.perf)
        ring = next(s for s in plot.series if s.title == "ring-spsc")
        self.assertEqual(ring.points, [(p.inverse, p.value_ns) for p in points[:-1]])

    def test_an_8_byte_floor_is_the_reference_line_of_the_64_byte_plot(self) -> None:
        def floor_at_8_bytes(document: dict[str, Any]) -> None:  # as symphony-perf runs it
            document["results"] = [r for r in document["results"] if r["transport"] != "floor"
                                   or r["payload_bytes"] == 64]
            next(r for r in document["results"] if r["transport"] == "floor")["payload_bytes"] = 8
        perf = self.tool.load_perf_run(self.write_fixture(floor_at_8_bytes))
        titles = [s.title for s in self.tool.percentile_plot(perf).series]
        self.assertEqual(titles[:3], ["floor (8 B)", "ring-spsc", "topic-native"])

    def test_hgrm_last_row_with_or_without_the_inverse_column(self) -> None:
        header = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n"
        rows = "      85.000 0.500000000000        500           2.00\n"
        java = self.dir / "java.hgrm"  # HdrHistogram leaves the 100% row's inverse out
        java.write_text(header + rows + "     900.000 1.000000000000       1000\n",
                        encoding="utf-8")
        c_style = self.dir / "c.hgrm"  # hdr_histogram (C) writes inf
        c_style.write_text(header + rows + "     900.000 1.000000000000       1000     inf\n",
                           encoding="utf-8")
        for path in (java, c_style):
            last = self.tool.read_hgrm(path)[-1]
            self.assertEqual((last.value_ns, last.percentile, last.inverse),
                             (900.0, 1.0, float("inf")), path.name)

    def test_no_hgrm_files_means_no_percentile_plot(self) -> None:
        def drop_hgrm(document: dict[str, Any]) -> None:
            for row in document["results"]:
                row["hgrm"] = None
        report = self.report_for(self.write_fixture(drop_hgrm))
        self.assertFalse((self.dir / "out" / "percentiles-64B-busy.svg").exists())
        self.assertNotIn("percentiles-64B-busy", report)
        self.assertIn("latency-vs-payload-busy.svg", report)

    def test_no_plots_option_writes_none(self) -> None:
        report = self.report_for(self.write_fixture(), "--no-plots")
        self.assertEqual(list((self.dir / "out").glob("*.svg")), [])
        self.assertNotIn("## Plots", report)


if __name__ == "__main__":
    unittest.main()
