"""The issue's targets computed from known numbers: met on the bound, not met just past it, no
data when a row is missing or skipped, and the verdicts as report.md shows them."""

from __future__ import annotations

import sys
import unittest
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import TempDirTest, find_result, load_tool, section, table_row  # noqa: E402

MIB = 1 << 20
RING_FLOOR = "ring-spsc ≤ 1.5x floor (busy, 64 B, p50)"
TOPIC_FLOOR = "topic-native ≤ 1.8x floor (busy, 64 B, p50)"
VS_ICEORYX = "topic-native ≥ 4x faster than iceoryx-raw (busy, 64 B, p50)"
VS_ZMQ = "topic-native ≥ 100x faster than zmq-ipc (busy, 64 B, p50)"
VS_BOOST_MQ = "topic-native vs boost-mq (busy, 64 B, p50)"
VS_UDS = "topic-native vs uds (busy, 64 B, p50)"
BLOCKING_UDS = "topic-native ≥ 2x faster than uds (blocking, 64 B, p50)"
BLOCKING_BOOST_MQ = "topic-native ≥ 2x faster than boost-mq (blocking, 64 B, p50)"
LARGE = "topic-native 64 MiB ≤ 2x its 64 B (busy, p50, touch excluded)"

Edit = Callable[[dict[str, Any]], None]


def set_field(transport: str, mode: str, payload: int, **fields: Any) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        find_result(document, transport, mode, payload).update(fields)
    return edit


class Targets(TempDirTest):
    def setUp(self) -> None:
        super().setUp()
        self.tool = load_tool()

    def verdicts(self, *edits: Edit) -> dict[str, Any]:
        def apply(document: dict[str, Any]) -> None:
            for edit in edits:
                edit(document)
        perf = self.tool.load_perf_run(self.write_fixture(apply))
        return {v.target: v for v in self.tool.evaluate_targets(perf)}

    def assert_verdict(self, target: str, expected: str, *edits: Edit) -> None:
        verdict = self.verdicts(*edits)[target]
        self.assertEqual(verdict.verdict, expected, verdict)

    def test_sample_fixture_verdicts_in_the_report(self) -> None:
        report = self.report_for(self.write_fixture(), "--no-plots")
        targets = section(report, "Targets (issue #5)")
        expected = {RING_FLOOR: ("1.54x", "not met"),  # 85 / 55 = 1.545
                    TOPIC_FLOOR: ("1.73x", "met"),  # 95 / 55
                    VS_ICEORYX: ("13.9x faster", "met"),  # 1316 / 95
                    VS_ZMQ: ("126.3x faster", "met"),  # 12000 / 95
                    VS_BOOST_MQ: ("7.4x faster", "reported"),  # 700 / 95: no bound
                    VS_UDS: ("26.3x faster", "reported"),
                    BLOCKING_UDS: ("54.5x faster", "met"),  # 6000 / 110
                    BLOCKING_BOOST_MQ: ("40.9x faster", "met"),  # 4500 / 110
                    LARGE: ("1.58x", "met")}  # 150 / 95
        for target, (measured, verdict) in expected.items():
            cells = table_row(targets, target)
            self.assertEqual((cells[1], cells[3]), (measured, verdict), target)

    def test_floor_ratios_on_and_past_the_bound(self) -> None:
        self.assert_verdict(RING_FLOOR, "met", set_field("ring-spsc", "busy", 64,
                                                         ratio_to_floor=1.5))
        self.assert_verdict(RING_FLOOR, "not met", set_field("ring-spsc", "busy", 64,
                                                             ratio_to_floor=1.51))
        self.assert_verdict(TOPIC_FLOOR, "met", set_field("topic-native", "busy", 64,
                                                          ratio_to_floor=1.8))
        self.assert_verdict(TOPIC_FLOOR, "not met", set_field("topic-native", "busy", 64,
                                                              ratio_to_floor=1.81))

    def test_speedups_over_peers_on_and_past_the_bound(self) -> None:
        # topic-native busy 64 B p50 is 95 ns, blocking 110 ns in the fixture.
        cases = [(VS_ICEORYX, "iceoryx-raw", "busy", 380.0, 379.0),
                 (VS_ZMQ, "zmq-ipc", "busy", 9500.0, 9490.0),
                 (BLOCKING_UDS, "uds", "blocking", 220.0, 219.0),
                 (BLOCKING_BOOST_MQ, "boost-mq", "blocking", 220.0, 219.0)]
        for target, peer, mode, on_bound, past_bound in cases:
            self.assert_verdict(target, "met", set_field(peer, mode, 64, p50_ns=on_bound))
            self.assert_verdict(target, "not met", set_field(peer, mode, 64, p50_ns=past_bound))

    def test_our_side_slower_turns_a_met_target_not_met(self) -> None:
        # iceoryx-raw is 1316 ns: topic-native at 330 ns is 3.99x faster.
        self.assert_verdict(VS_ICEORYX, "not met", set_field("topic-native", "busy", 64,
                                                             p50_ns=330.0))

    def test_report_only_comparisons_never_judge(self) -> None:
        verdict = self.verdicts(set_field("boost-mq", "busy", 64, p50_ns=50.0))[VS_BOOST_MQ]
        self.assertEqual((verdict.verdict, verdict.measured), ("reported", "1.9x slower"))

    def test_large_payload_ratio_on_and_past_the_bound(self) -> None:
        self.assert_verdict(LARGE, "met", set_field("topic-native", "busy", 64 * MIB,
                                                    p50_ns=190.0))
        self.assert_verdict(LARGE, "not met", set_field("topic-native", "busy", 64 * MIB,
                                                        p50_ns=191.0))

    def test_large_payload_verdict_shows_the_floor_buffer_ratio_when_measured(self) -> None:
        def add_floor_buffer(document: dict[str, Any]) -> None:
            for payload, p50 in ((64, 80.0), (64 * MIB, 800.0)):
                row = dict(find_result(document, "topic-native", "busy", payload))
                row.update(transport="floor-buffer", p50_ns=p50)
                document["results"].append(row)
            document["transports"].append({"name": "floor-buffer", "description": "reference"})
        without = self.verdicts()[LARGE]
        self.assertNotIn("floor-buffer", without.compared)
        verdict = self.verdicts(add_floor_buffer)[LARGE]
        self.assertIn("floor-buffer 800 ns / 80.0 ns = 10.00x", verdict.compared)
        self.assertEqual(verdict.verdict, "met")  # the verdict is still topic-native's own ratio

    def test_skipped_or_missing_rows_give_no_data_with_the_reason(self) -> None:
        def skip_iceoryx(document: dict[str, Any]) -> None:
            row = find_result(document, "iceoryx-raw", "busy", 64)
            for key in ("p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns", "max_ns",
                        "mean_ns", "ratio_to_floor"):
                row[key] = None
            row["skipped"] = "RouDi busy"

        def drop_zmq(document: dict[str, Any]) -> None:
            document["results"] = [r for r in document["results"] if r["transport"] != "zmq-ipc"]

        verdicts = self.verdicts(skip_iceoryx, drop_zmq)
        self.assertEqual(verdicts[VS_ICEORYX].verdict, "no data")
        self.assertIn("iceoryx-raw pingpong busy 64 B skipped: RouDi busy",
                      verdicts[VS_ICEORYX].compared)
        self.assertEqual(verdicts[VS_ZMQ].verdict, "no data")
        self.assertIn("no zmq-ipc pingpong busy 64 B row", verdicts[VS_ZMQ].compared)
        self.assertEqual(verdicts[TOPIC_FLOOR].verdict, "met")  # the others still judged

    def test_a_zero_p50_is_no_data_not_a_division_by_zero(self) -> None:
        verdicts = self.verdicts(set_field("topic-native", "busy", 64, p50_ns=0))
        self.assertEqual(verdicts[VS_ICEORYX].verdict, "no data")
        self.assertIn("topic-native pingpong busy 64 B has no p50", verdicts[VS_ICEORYX].compared)
        self.assertEqual(verdicts[LARGE].verdict, "no data")

    def test_missing_or_zero_floor_ratio_is_no_data(self) -> None:
        for ratio in (None, 0):
            verdict = self.verdicts(set_field("ring-spsc", "busy", 64, ratio_to_floor=ratio))
            self.assertEqual(verdict[RING_FLOOR].verdict, "no data", ratio)
            self.assertIn("has no ratio_to_floor", verdict[RING_FLOOR].compared)


if __name__ == "__main__":
    unittest.main()
