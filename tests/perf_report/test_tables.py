"""report.md from the fixture: the header, one table per pattern and mode with the right cells,
the skipped rows, the transports, and the seed's figures beside ours."""

from __future__ import annotations

import sys
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import TempDirTest, find_result, load_tool, section, table_row  # noqa: E402

PINGPONG_BUSY = "ping-pong: one-way latency (round trip / 2); busy"


def known_ring_spsc_numbers(document: dict[str, Any]) -> None:
    """ring-spsc 64 B busy with numbers that exercise every unit of the formatting."""
    find_result(document, "ring-spsc", "busy", 64).update({
        "p50_ns": 85.5, "p90_ns": 120, "p99_ns": 1520, "p999_ns": 25300, "p9999_ns": 253000,
        "max_ns": 3.2e6, "mean_ns": 99.94, "touch_ns": 12, "ratio_to_floor": 1.5,
        "spread": {"min": 80, "max": 91}})
    find_result(document, "ring-spsc", "busy", 64, "throughput").update({
        "msgs_per_s": 23.25e6, "bytes_per_s": 1.488e9, "spread": {"min": 18.6e6, "max": 26.74e6}})


class ReportTables(TempDirTest):
    def setUp(self) -> None:
        super().setUp()
        self.report = self.report_for(self.write_fixture(known_ring_spsc_numbers), "--no-plots")

    def test_header_names_machine_build_and_command(self) -> None:
        self.assertEqual(table_row(self.report, "CPU"), ["CPU", "AMD EPYC 7B13, 2 cores"])
        self.assertEqual(table_row(self.report, "placement")[1], "ping on cpu 0, pong on cpu 1")
        self.assertEqual(table_row(self.report, "kernel")[1], "Linux 6.18.0 #1 SMP PREEMPT_DYNAMIC")
        self.assertEqual(table_row(self.report, "compiler")[1], "g++ 12.2.0")
        self.assertEqual(table_row(self.report, "build")[1], "Release, commit 4d1bd18")
        self.assertEqual(table_row(self.report, "date")[1], "2026-11-25T12:00:00Z")
        self.assertIn("`build/release/perf/symphony-perf --matrix standard",
                      table_row(self.report, "command")[1])

    def test_one_table_per_pattern_and_mode_present(self) -> None:
        headings = [line for line in self.report.splitlines() if line.startswith("### ")]
        self.assertEqual(headings, [
            "### " + PINGPONG_BUSY,
            "### ping-pong: one-way latency (round trip / 2); blocking",
            "### throughput: one-way stream, first send to last receive; busy",
            "### fan-out: one publisher, N subscribers; busy",
            "### open loop: fixed send rate, latency from the intended send time; busy",
        ])

    def test_latency_row_cells_in_units(self) -> None:
        table = section(self.report, PINGPONG_BUSY)
        self.assertIn("| transport | payload | p50 | p90 | p99 | p99.9 | p99.99 | max | mean "
                      "| touch | x floor | spread |", table)  # msgs/s, GB/s: empty, left out
        self.assertIn("| ring-spsc | 64 B | 85.5 ns | 120 ns | 1.52 µs | 25.3 µs | 253 µs "
                      "| 3.20 ms | 99.9 ns | 12.0 ns | 1.50 | 80.0 ns..91.0 ns |", table)

    def test_rows_in_transport_order_then_payload(self) -> None:
        table = section(self.report, PINGPONG_BUSY)
        keys = [tuple(c.strip() for c in line.strip("|").split("|")[:2])
                for line in table.splitlines()[4:]]  # below heading, blank, header, rule
        ring = [payload for transport, payload in keys if transport == "ring-spsc"]
        self.assertEqual(ring, ["8 B", "64 B", "4 KiB", "1 MiB", "64 MiB"])
        transports = list(dict.fromkeys(t for t, _ in keys))
        self.assertEqual(transports[:4], ["floor", "ring-spsc", "ring-mpmc", "topic-native"])

    def test_throughput_table_has_rates_not_latency(self) -> None:
        table = section(self.report, "first send to last receive; busy")
        self.assertIn("| transport | payload | touch | msgs/s | GB/s | spread |", table)
        self.assertIn("| ring-spsc | 64 B | 10.0 ns | 23.25M | 1.49 | 18.60M..26.74M |", table)

    def test_fanout_and_openloop_key_columns(self) -> None:
        fanout = section(self.report, "N subscribers; busy")
        self.assertEqual(table_row(fanout, "topic-native")[:3], ["topic-native", "64 B", "1"])
        self.assertIn("| topic-native | 64 B | 8 | 410 ns |", fanout)
        self.assertTrue(fanout.splitlines()[-1].endswith("| 385 ns..443 ns |"))  # p50's spread
        openloop = section(self.report, "intended send time; busy")
        self.assertIn("| ring-spsc | 64 B | 100.0k/s | 110 ns |", openloop)

    def test_skipped_rows_listed_apart_from_the_tables(self) -> None:
        self.assertNotIn("topic-iceoryx", section(self.report, PINGPONG_BUSY))
        skipped = section(self.report, "Skipped (not plotted)")
        self.assertIn("| topic-iceoryx | pingpong | busy | 64 B | an incompatible RouDi is "
                      "already running", skipped)
        self.assertIn("| boost-spsc | pingpong | blocking | 64 B | boost::lockfree::spsc_queue "
                      "has no wake-up of its own |", skipped)

    def test_transports_described_html_escaped(self) -> None:
        transports = section(self.report, "what each does with the bytes")
        for name in ("floor", "ring-spsc", "topic-native", "iceoryx-raw", "zmq-ipc", "uds",
                     "boost-mq", "boost-spsc", "handoff", "control-rr"):
            self.assertIn(f"| {name} | ", transports)
        self.assertIn("spsc_queue&lt;std::array&lt;std::byte, N&gt;, capacity&lt;K&gt;&gt;",
                      transports)

    def test_seed_figures_beside_our_nearest_rows(self) -> None:
        seed = section(self.report, "Beside the seed's published figures")
        shm = table_row(seed, "shared memory: 10.0 µs–50.0 µs")
        self.assertEqual(shm[1], "topic-native pingpong busy 64 B (ping-pong 64 B)")
        self.assertEqual((shm[2], shm[4]), ("95.0 ns", "105.3x faster"))  # 10 µs / 95 ns
        self.assertEqual(table_row(seed, "Unix sockets: 100 µs–300 µs")[4],
                         "40.0x faster")  # 100 µs / 2.5 µs
        mmap = table_row(seed, "mmap files: 500 µs–2.00 ms")
        self.assertIn("handoff pingpong blocking 64 MiB", mmap[1])  # the largest handoff
        broadcast = table_row(seed, "broadcast: 200 µs–500 µs")
        self.assertIn("topic-native fanout busy 64 B x8", broadcast[1])


class SeedWithoutRows(TempDirTest):
    def test_a_figure_without_our_row_says_so(self) -> None:
        def drop_handoff(document: dict[str, Any]) -> None:
            document["results"] = [r for r in document["results"] if r["transport"] != "handoff"]
        report = self.report_for(self.write_fixture(drop_handoff), "--no-plots")
        mmap = table_row(section(report, "Beside the seed's published figures"),
                         "mmap files: 500 µs–2.00 ms")
        self.assertTrue(mmap[1].startswith("no row in this run"), mmap)


class Formatting(unittest.TestCase):
    def setUp(self) -> None:
        self.tool = load_tool()

    def test_latency_units(self) -> None:
        cases = {55: "55.0 ns", 99.94: "99.9 ns", 99.96: "100 ns", 999: "999 ns",
                 999.7: "1.00 µs", 1000: "1.00 µs", 9996: "10.0 µs", 12345: "12.3 µs",
                 99_960: "100 µs", 123456: "123 µs", 999_700: "1.00 ms", 2.5e6: "2.50 ms",
                 1.5e9: "1.50 s", None: "-"}
        for value, text in cases.items():
            self.assertEqual(self.tool.format_ns(value), text, value)

    def test_ratios_and_speedups(self) -> None:
        self.assertEqual(self.tool.format_times(1.545), "1.54x")
        self.assertEqual(self.tool.format_times(0.00042), "0.00042x")
        self.assertEqual(self.tool.format_speedup(13.86), "13.9x faster")
        self.assertEqual(self.tool.format_speedup(0.25), "4.0x slower")
        self.assertEqual(self.tool.format_speedup(0.0), "-")

    def test_sizes_and_rates(self) -> None:
        self.assertEqual(self.tool.format_bytes(8), "8 B")
        self.assertEqual(self.tool.format_bytes(1000), "1000 B")
        self.assertEqual(self.tool.format_bytes(4096), "4 KiB")
        self.assertEqual(self.tool.format_bytes(64 << 20), "64 MiB")
        self.assertEqual(self.tool.format_rate(564_500), "564.5k")
        self.assertEqual(self.tool.format_rate(999), "999")
        self.assertEqual(self.tool.format_gbps(1.488e9), "1.49")


if __name__ == "__main__":
    unittest.main()
