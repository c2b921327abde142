#!/usr/bin/python3
"""Turns a symphony-perf JSON file (schema_version 2) into a Markdown report and SVG plots.

Writes into the output directory:
  report.md                        machine header, targets (issue #5), the seed's published
                                   figures beside ours, one table per pattern and mode, the
                                   skipped rows, what each transport does with the bytes
  latency-vs-payload-busy.svg      p50 vs payload size per transport, log-log (ping-pong)
  latency-vs-payload-blocking.svg  the same in blocking mode
  percentiles-64B-busy.svg         latency vs 1/(1-percentile) from the .hgrm files, 64 B busy

With --update-readme FILE it also replaces the text between the lines
<!-- perf-matrix:begin --> and <!-- perf-matrix:end --> in FILE with the tables and links to
copies of the plots (in --readme-plots DIR, default docs/perf beside FILE).

Debian's python3 and its standard library only; the plots need gnuplot (package gnuplot-nox).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

SCHEMA_VERSION = 2
PATTERNS = ("pingpong", "throughput", "fanout", "openloop")
MODES = ("busy", "blocking")
# Ours in the plots: solid lines; the peers are dashed and the floor is black.
OUR_TRANSPORTS = frozenset(
    {"ring-spsc", "ring-mpmc", "topic-native", "topic-iceoryx", "control-rr", "handoff"})
BEGIN_MARKER = "<!-- perf-matrix:begin -->"
END_MARKER = "<!-- perf-matrix:end -->"
KIB = 1024
MIB = 1024 * 1024

LATENCY_FIELDS = ("p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns", "max_ns", "mean_ns")
OPTIONAL_NUMBER_FIELDS = LATENCY_FIELDS + (
    "touch_ns", "msgs_per_s", "bytes_per_s", "rate_per_s", "ratio_to_floor")

PATTERN_TITLES = {
    "pingpong": "ping-pong: one-way latency (round trip / 2)",
    "throughput": "throughput: one-way stream, first send to last receive",
    "fanout": "fan-out: one publisher, N subscribers",
    "openloop": "open loop: fixed send rate, latency from the intended send time",
}


class ReportError(Exception):
    """A problem with the input or the environment, said in one line for the user."""


# ---------------------------------------------------------------------------------------------
# The data, as read and checked from the JSON file


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    kernel: str
    compiler: str
    hostname: str
    date: str
    build_type: str
    git_commit: str
    placement: str


@dataclass(frozen=True)
class Run:
    command: str
    matrix: str
    repeats: int
    seconds_per_repeat: float


@dataclass(frozen=True)
class Transport:
    name: str
    description: str


@dataclass(frozen=True)
class Row:
    transport: str
    pattern: str
    mode: str
    payload_bytes: int
    fanout: int
    repeats: int
    p50_ns: Optional[float]
    p90_ns: Optional[float]
    p99_ns: Optional[float]
    p999_ns: Optional[float]
    p9999_ns: Optional[float]
    max_ns: Optional[float]
    mean_ns: Optional[float]
    touch_ns: Optional[float]
    msgs_per_s: Optional[float]
    bytes_per_s: Optional[float]
    rate_per_s: Optional[float]
    samples: int
    ratio_to_floor: Optional[float]
    spread_min: Optional[float]
    spread_max: Optional[float]
    hgrm: Optional[Path]  # resolved against the JSON file's directory
    skipped: Optional[str]

    def label(self) -> str:
        text = f"{self.transport} {self.pattern} {self.mode} {format_bytes(self.payload_bytes)}"
        return text + (f" x{self.fanout}" if self.pattern == "fanout" else "")

    def spread_is_rate(self) -> bool:
        """A row with latency spreads its p50 (fan-out too); one without, its msgs/s."""
        return self.p50_ns is None


@dataclass(frozen=True)
class PerfRun:
    source: Path
    machine: Machine
    run: Run
    transports: tuple[Transport, ...]
    rows: tuple[Row, ...]

    def transport_order(self, name: str) -> int:
        names = [t.name for t in self.transports]
        return names.index(name) if name in names else len(names)


def load_perf_run(path: Path) -> PerfRun:
    """Reads and checks a schema-v2 file; every problem is a ReportError naming the field."""
    document = read_json(path)
    if not isinstance(document, dict):
        raise ReportError(f"{path}: the top level is not a JSON object")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ReportError(
            f"{path}: schema_version is {json.dumps(version)}, this tool reads {SCHEMA_VERSION} "
            f"(symphony-perf --json from issue #5 or later)")
    machine_fields = require(document, "machine", dict, path.name)
    run_fields = require(document, "run", dict, path.name)
    transports = tuple(
        parse_transport(item, f"{path.name}: transports[{i}]")
        for i, item in enumerate(require(document, "transports", list, path.name)))
    names = {t.name for t in transports}
    rows = tuple(
        parse_row(item, f"{path.name}: results[{i}]", path.parent, names)
        for i, item in enumerate(require(document, "results", list, path.name)))
    return PerfRun(path, parse_machine(machine_fields, f"{path.name}: machine"),
                   parse_run(run_fields, f"{path.name}: run"), transports, rows)


def read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read: {error}") from None
    try:
        return json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError as error:
        raise ReportError(
            f"{path}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None


def reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def require(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    """obj[key], which must exist and be of `kind` (ints are not bools; floats accept ints)."""
    if key not in obj:
        raise ReportError(f"{where}: field '{key}' is missing")
    value = obj[key]
    if not is_kind(value, kind):
        raise ReportError(
            f"{where}: field '{key}' should be {kind_name(kind)}, not {json.dumps(value)[:60]}")
    return value


def is_kind(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def kind_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", dict: "an object",
            list: "an array"}.get(kind, kind.__name__)


def optional_number(obj: dict[str, Any], key: str, where: str) -> Optional[float]:
    if key not in obj:
        raise ReportError(f"{where}: field '{key}' is missing")
    value = obj[key]
    if value is None:
        return None
    if not is_kind(value, float):
        raise ReportError(f"{where}: field '{key}' should be a number or null, "
                          f"not {json.dumps(value)[:60]}")
    return float(value)


def optional_string(obj: dict[str, Any], key: str, where: str) -> Optional[str]:
    if key not in obj:
        raise ReportError(f"{where}: field '{key}' is missing")
    value = obj[key]
    if value is not None and not isinstance(value, str):
        raise ReportError(f"{where}: field '{key}' should be a string or null")
    return value


def parse_machine(fields: dict[str, Any], where: str) -> Machine:
    return Machine(
        cpu=require(fields, "cpu", str, where), cores=require(fields, "cores", int, where),
        kernel=require(fields, "kernel", str, where),
        compiler=require(fields, "compiler", str, where),
        hostname=require(fields, "hostname", str, where),
        date=require(fields, "date", str, where),
        build_type=require(fields, "build_type", str, where),
        git_commit=require(fields, "git_commit", str, where),
        placement=require(fields, "placement", str, where))


def parse_run(fields: dict[str, Any], where: str) -> Run:
    return Run(command=require(fields, "command", str, where),
               matrix=require(fields, "matrix", str, where),
               repeats=require(fields, "repeats", int, where),
               seconds_per_repeat=float(require(fields, "seconds_per_repeat", float, where)))


def parse_transport(item: Any, where: str) -> Transport:
    if not isinstance(item, dict):
        raise ReportError(f"{where}: should be an object")
    return Transport(require(item, "name", str, where), require(item, "description", str, where))


def parse_row(item: Any, where: str, base_dir: Path, transports: set[str]) -> Row:
    if not isinstance(item, dict):
        raise ReportError(f"{where}: should be an object")
    transport = require(item, "transport", str, where)
    if transport not in transports:
        raise ReportError(f"{where}: transport '{transport}' is not described in \"transports\"")
    pattern = require(item, "pattern", str, where)
    if pattern not in PATTERNS:
        raise ReportError(f"{where}: pattern '{pattern}' is not one of {', '.join(PATTERNS)}")
    mode = require(item, "mode", str, where)
    if mode not in MODES:
        raise ReportError(f"{where}: mode '{mode}' is not one of {', '.join(MODES)}")
    numbers = {key: optional_number(item, key, where) for key in OPTIONAL_NUMBER_FIELDS}
    skipped = optional_string(item, "skipped", where)
    spread_min, spread_max = parse_spread(item, where, skipped is not None)
    hgrm = optional_string(item, "hgrm", where)
    return Row(transport=transport, pattern=pattern, mode=mode,
               payload_bytes=require(item, "payload_bytes", int, where),
               fanout=require(item, "fanout", int, where),
               repeats=require(item, "repeats", int, where),
               samples=require(item, "samples", int, where),
               spread_min=spread_min, spread_max=spread_max,
               hgrm=base_dir / hgrm if hgrm else None, skipped=skipped, **numbers)


def parse_spread(item: dict[str, Any], where: str,
                 skipped: bool) -> tuple[Optional[float], Optional[float]]:
    """A measured row has {"min", "max"}; a skipped one may have null (or null members)."""
    if "spread" not in item:
        raise ReportError(f"{where}: field 'spread' is missing")
    spread = item["spread"]
    if spread is None and skipped:
        return None, None
    if not isinstance(spread, dict):
        raise ReportError(f"{where}: field 'spread' should be an object {{\"min\", \"max\"}}")
    if skipped:
        return (optional_number(spread, "min", f"{where} spread"),
                optional_number(spread, "max", f"{where} spread"))
    return (float(require(spread, "min", float, f"{where}: spread")),
            float(require(spread, "max", float, f"{where}: spread")))


# ---------------------------------------------------------------------------------------------
# .hgrm files (HdrHistogram's outputPercentileDistribution text)


@dataclass(frozen=True)
class PercentilePoint:
    value_ns: float
    percentile: float  # 0..1
    inverse: float  # 1 / (1 - percentile); infinite at the last line


def hgrm_point(fields: Sequence[str]) -> PercentilePoint:
    """One row. HdrHistogram (Java) leaves the 1/(1-percentile) column out of the 100% row;
    hdr_histogram (C) writes "inf" there: both are an infinite inverse."""
    if len(fields) == 3:
        fields = [*fields, "inf"]
    if len(fields) != 4:
        raise ValueError("not 3 or 4 columns")
    value, percentile, _count, inverse = (float(f) for f in fields)
    return PercentilePoint(value, percentile, inverse)


def read_hgrm(path: Path) -> list[PercentilePoint]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file (named by a result's \"hgrm\")") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read: {error}") from None
    points = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or line.startswith("#") or fields[0] == "Value":
            continue
        try:
            points.append(hgrm_point(fields))
        except ValueError:
            raise ReportError(f"{path}:{number}: not an .hgrm row "
                              f"(value percentile count 1/(1-percentile)): {line.strip()[:60]}"
                              ) from None
    if not points:
        raise ReportError(f"{path}: no percentile rows")
    return points


# ---------------------------------------------------------------------------------------------
# Formatting


def format_bytes(size: int) -> str:
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} B"


def format_ns(value: Optional[float]) -> str:
    """ns below 1 µs (a decimal below 100: a halved round trip), then 3 significant digits."""
    if value is None:
        return "-"
    # Thresholds where the rounded text would reach the next width (99.96 -> "100").
    if value < 99.95:
        return f"{value:.1f} ns"
    if value < 999.5:
        return f"{value:.0f} ns"
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if value >= scale * 0.9995:
            return f"{three_digits(value / scale)} {unit}"
    return f"{value:.0f} ns"


def three_digits(value: float) -> str:
    if value >= 99.95:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 9.995 else f"{value:.2f}"


def format_rate(per_second: Optional[float]) -> str:
    if per_second is None:
        return "-"
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f}M"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.1f}k"
    return f"{per_second:.0f}"


def format_gbps(bytes_per_s: Optional[float]) -> str:
    return "-" if bytes_per_s is None else f"{bytes_per_s / 1e9:.2f}"


def format_ratio(ratio: Optional[float]) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


def format_times(ratio: float) -> str:
    """A ratio such as 1.54x; tiny ones (a disturbed reference) keep two significant digits."""
    return f"{ratio:.2f}x" if ratio >= 0.01 else f"{ratio:.2g}x"


def format_speedup(speedup: float) -> str:
    """How many times faster (time ratio >= 1) or slower, never "0.0x faster"."""
    if speedup >= 1:
        return f"{speedup:.1f}x faster"
    return f"{1 / speedup:.1f}x slower" if speedup > 0 else "-"


def format_spread(row: Row) -> str:
    if row.spread_min is None or row.spread_max is None:
        return "-"
    fmt = format_rate if row.spread_is_rate() else format_ns
    return f"{fmt(row.spread_min)}..{fmt(row.spread_max)}"


def markdown_text(text: str) -> str:
    """Free text in a table cell: '<' would open an HTML tag (std::array<std::byte, N>)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]],
                   right_aligned: Sequence[bool]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "| " + " | ".join("---:" if r else "---" for r in right_aligned) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Result tables: one per pattern and mode


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Row], str]
    numeric: bool = True


METRIC_COLUMNS = (
    Column("p50", lambda r: format_ns(r.p50_ns)),
    Column("p90", lambda r: format_ns(r.p90_ns)),
    Column("p99", lambda r: format_ns(r.p99_ns)),
    Column("p99.9", lambda r: format_ns(r.p999_ns)),
    Column("p99.99", lambda r: format_ns(r.p9999_ns)),
    Column("max", lambda r: format_ns(r.max_ns)),
    Column("mean", lambda r: format_ns(r.mean_ns)),
    Column("touch", lambda r: format_ns(r.touch_ns)),
    Column("msgs/s", lambda r: format_rate(r.msgs_per_s)),
    Column("GB/s", lambda r: format_gbps(r.bytes_per_s)),
    Column("x floor", lambda r: format_ratio(r.ratio_to_floor)),
    Column("spread", format_spread),
)


def key_columns(pattern: str) -> list[Column]:
    columns = [Column("transport", lambda r: r.transport, numeric=False),
               Column("payload", lambda r: format_bytes(r.payload_bytes))]
    if pattern == "fanout":
        columns.append(Column("subscribers", lambda r: str(r.fanout)))
    if pattern == "openloop":
        columns.append(Column("rate", lambda r: format_rate(r.rate_per_s) + "/s"))
    return columns


def measured_rows(perf: PerfRun, pattern: str, mode: str) -> list[Row]:
    rows = [r for r in perf.rows if r.pattern == pattern and r.mode == mode and not r.skipped]
    return sorted(rows, key=lambda r: (perf.transport_order(r.transport), r.payload_bytes,
                                       r.fanout, r.rate_per_s or 0))


def results_table(rows: Sequence[Row], pattern: str) -> str:
    """Columns that are empty in every row (latency in a throughput table) are left out."""
    metrics = [c for c in METRIC_COLUMNS if any(c.cell(r) != "-" for r in rows)]
    columns = key_columns(pattern) + metrics
    return markdown_table([c.header for c in columns],
                          ([c.cell(r) for c in columns] for r in rows),
                          [c.numeric for c in columns])


def results_sections(perf: PerfRun, level: int) -> list[str]:
    parts = []
    for pattern in PATTERNS:
        for mode in MODES:
            rows = measured_rows(perf, pattern, mode)
            if rows:
                parts.append(heading(level, f"{PATTERN_TITLES[pattern]}; {mode}"))
                parts.append(results_table(rows, pattern))
    return parts


def skipped_table(perf: PerfRun) -> Optional[str]:
    rows = [r for r in perf.rows if r.skipped]
    if not rows:
        return None
    return markdown_table(["transport", "pattern", "mode", "payload", "why"],
                          ([r.transport, r.pattern, r.mode, format_bytes(r.payload_bytes),
                            markdown_text(r.skipped or "")] for r in rows),
                          [False, False, False, True, False])


# ---------------------------------------------------------------------------------------------
# Targets (issue #5: ratios from one run of the standard matrix, p50)


@dataclass(frozen=True)
class Verdict:
    target: str
    compared: str
    measured: str
    verdict: str  # "met", "not met", "reported" (no bound), "no data"


def find_row(perf: PerfRun, transport: str, mode: str, payload: int,
             pattern: str = "pingpong", fanout: int = 1) -> Optional[Row]:
    for row in perf.rows:
        if (row.transport, row.pattern, row.mode, row.payload_bytes, row.fanout) == (
                transport, pattern, mode, payload, fanout):
            return row
    return None


def missing_reason(row: Optional[Row], wanted: str) -> Optional[str]:
    """Why `row` cannot be used for a target, or None when it has a p50."""
    if row is None:
        return f"no {wanted} row"
    if row.skipped:
        return f"{row.label()} skipped: {row.skipped}"
    if not row.p50_ns:  # null, or 0: nothing to divide by
        return f"{row.label()} has no p50 ({row.p50_ns})"
    return None


def floor_target(perf: PerfRun, transport: str, bound: float) -> Verdict:
    target = f"{transport} ≤ {bound:g}x floor (busy, 64 B, p50)"
    row = find_row(perf, transport, "busy", 64)
    reason = missing_reason(row, f"{transport} pingpong busy 64 B")
    if reason is None and row is not None and not row.ratio_to_floor:
        # null, or 0 (a p50 is never 0: no floor was measured with it): never a pass.
        reason = f"{row.label()} has no ratio_to_floor ({row.ratio_to_floor})"
    if reason or row is None or row.ratio_to_floor is None:
        return Verdict(target, reason or "", "-", "no data")
    return Verdict(target, f"{transport} {format_ns(row.p50_ns)}, floor interleaved with it",
                   format_times(row.ratio_to_floor),
                   "met" if row.ratio_to_floor <= bound else "not met")


def faster_target(perf: PerfRun, ours: str, peer: str, mode: str,
                  factor: Optional[float]) -> Verdict:
    """Ours at least `factor` times faster than the peer (peer p50 / our p50); no factor: reported."""
    wanted = f"{ours} vs {peer} ({mode}, 64 B, p50)"
    target = f"{ours} ≥ {factor:g}x faster than {peer} ({mode}, 64 B, p50)" if factor else wanted
    our_row = find_row(perf, ours, mode, 64)
    peer_row = find_row(perf, peer, mode, 64)
    reason = (missing_reason(our_row, f"{ours} pingpong {mode} 64 B")
              or missing_reason(peer_row, f"{peer} pingpong {mode} 64 B"))
    if reason or our_row is None or peer_row is None:
        return Verdict(target, reason or "", "-", "no data")
    assert our_row.p50_ns is not None and peer_row.p50_ns is not None
    speedup = peer_row.p50_ns / our_row.p50_ns
    compared = f"{peer} {format_ns(peer_row.p50_ns)} / {ours} {format_ns(our_row.p50_ns)}"
    if factor is None:
        return Verdict(target, compared, format_speedup(speedup), "reported")
    return Verdict(target, compared, format_speedup(speedup),
                   "met" if speedup >= factor else "not met")


def large_payload_target(perf: PerfRun, transport: str, bound: float) -> Verdict:
    target = f"{transport} 64 MiB ≤ {bound:g}x its 64 B (busy, p50, touch excluded)"
    small = find_row(perf, transport, "busy", 64)
    large = find_row(perf, transport, "busy", 64 * MIB)
    reason = (missing_reason(large, f"{transport} pingpong busy 64 MiB")
              or missing_reason(small, f"{transport} pingpong busy 64 B"))
    if reason or small is None or large is None:
        return Verdict(target, reason or "", "-", "no data")
    assert small.p50_ns is not None and large.p50_ns is not None
    ratio = large.p50_ns / small.p50_ns
    compared = f"64 MiB {format_ns(large.p50_ns)} / 64 B {format_ns(small.p50_ns)}"
    # The same ratio for the machine's floor at those sizes: what no shared-memory transport
    # can beat on this machine (see floor-buffer).
    floor_small = find_row(perf, "floor-buffer", "busy", 64)
    floor_large = find_row(perf, "floor-buffer", "busy", 64 * MIB)
    if (missing_reason(floor_small, "") is None and missing_reason(floor_large, "") is None
            and floor_small is not None and floor_large is not None):
        assert floor_small.p50_ns is not None and floor_large.p50_ns is not None
        compared += (f"; floor-buffer {format_ns(floor_large.p50_ns)} / "
                     f"{format_ns(floor_small.p50_ns)} = "
                     f"{format_times(floor_large.p50_ns / floor_small.p50_ns)}")
    return Verdict(target, compared, format_times(ratio), "met" if ratio <= bound else "not met")


def evaluate_targets(perf: PerfRun) -> list[Verdict]:
    return [
        floor_target(perf, "ring-spsc", 1.5),
        floor_target(perf, "topic-native", 1.8),
        faster_target(perf, "topic-native", "iceoryx-raw", "busy", 4),
        faster_target(perf, "topic-native", "zmq-ipc", "busy", 100),
        faster_target(perf, "topic-native", "boost-mq", "busy", None),
        faster_target(perf, "topic-native", "uds", "busy", None),
        faster_target(perf, "topic-native", "uds", "blocking", 2),
        faster_target(perf, "topic-native", "boost-mq", "blocking", 2),
        large_payload_target(perf, "topic-native", 2),
    ]


def targets_table(verdicts: Sequence[Verdict]) -> str:
    return markdown_table(["target", "measured", "from", "verdict"],
                          ([v.target, v.measured, v.compared, v.verdict] for v in verdicts),
                          [False, True, False, False])


def verdict_summary(verdicts: Sequence[Verdict]) -> str:
    counts = {name: sum(v.verdict == name for v in verdicts)
              for name in ("met", "not met", "reported", "no data")}
    return ", ".join(f"{count} {name}" for name, count in counts.items() if count)


# ---------------------------------------------------------------------------------------------
# The seed's published figures beside ours


@dataclass(frozen=True)
class SeedFigure:
    mechanism: str
    low_ns: float
    high_ns: float
    ours: Callable[[PerfRun], list[Row]]
    mapping: str


def rows_at(transports: Sequence[str], modes: Sequence[str], payload: int,
            pattern: str = "pingpong", fanout: int = 1) -> Callable[[PerfRun], list[Row]]:
    def pick(perf: PerfRun) -> list[Row]:
        found = (find_row(perf, t, m, payload, pattern, fanout) for t in transports for m in modes)
        return [r for r in found if r is not None]
    return pick


def largest_handoff(perf: PerfRun) -> list[Row]:
    """The handoff row with the largest payload in each mode (files are large payloads)."""
    picked = []
    for mode in MODES:
        rows = [r for r in perf.rows
                if r.transport == "handoff" and r.pattern == "pingpong" and r.mode == mode]
        if rows:
            picked.append(max(rows, key=lambda r: r.payload_bytes))
    return picked


SEED_FIGURES = (
    SeedFigure("shared memory", 10e3, 50e3,
               rows_at(["topic-native", "ring-spsc"], MODES, 64), "ping-pong 64 B"),
    SeedFigure("Unix sockets", 100e3, 300e3, rows_at(["uds"], MODES, 64), "ping-pong 64 B"),
    SeedFigure("mmap files", 500e3, 2e6, largest_handoff,
               "handoff (memfd mapped by the receiver), largest payload"),
    SeedFigure("broadcast", 200e3, 500e3,
               rows_at(["topic-native"], MODES, 64, "fanout", 8), "fan-out to 8 subscribers, 64 B"),
)


def seed_table(perf: PerfRun) -> str:
    lines = []
    for figure in SEED_FIGURES:
        seed = f"{figure.mechanism}: {format_ns(figure.low_ns)}–{format_ns(figure.high_ns)}"
        rows = figure.ours(perf)
        if not rows:
            lines.append([seed, f"no row in this run ({figure.mapping})", "-", "-", "-"])
        for row in rows:
            lines.append([seed, f"{row.label()} ({figure.mapping})"] + seed_cells(figure, row))
    return markdown_table(["seed's figure", "our nearest row", "p50", "p99",
                           "our p50 vs the seed's low end"],
                          lines, [False, False, True, True, True])


def seed_cells(figure: SeedFigure, row: Row) -> list[str]:
    if row.skipped:
        return [f"skipped: {markdown_text(row.skipped)}", "-", "-"]
    factor = "-" if not row.p50_ns else format_speedup(figure.low_ns / row.p50_ns)
    return [format_ns(row.p50_ns), format_ns(row.p99_ns), factor]


# ---------------------------------------------------------------------------------------------
# Plots (gnuplot, SVG)


@dataclass(frozen=True)
class Series:
    title: str
    points: list[tuple[float, float]]
    style: str  # gnuplot line style: colour, dash, point type


@dataclass(frozen=True)
class Plot:
    filename: str
    title: str
    series: list[Series]
    script_head: str  # axes, labels and tics
    drawing: str  # "linespoints" (a few measured sizes) or "lines" (a dense distribution)


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939")


def series_style(perf: PerfRun, transport: str) -> str:
    if transport == "floor":
        return "lc rgb '#000000' dt 3 lw 2 pt 7 ps 0.8"
    if transport == "floor-buffer":  # the floor at each payload size: black, dash-dot
        return "lc rgb '#000000' dt 4 lw 2 pt 5 ps 0.8"
    colour = PALETTE[perf.transport_order(transport) % len(PALETTE)]
    dash = 1 if transport in OUR_TRANSPORTS else 2
    return f"lc rgb '{colour}' dt {dash} lw 2 pt 7 ps 0.8"


def payload_tics(payloads: Iterable[int]) -> str:
    return ", ".join(f'"{format_bytes(p)}" {p}' for p in sorted(set(payloads)))


def latency_axis(values: Iterable[float]) -> str:
    """A log y axis from the power of ten below the smallest value to the one above the largest,
    each labelled in its unit (100 ns, 1 µs, ...)."""
    positive = [v for v in values if v > 0]
    if not positive:
        return ""
    low = math.floor(math.log10(min(positive)))
    high = max(math.ceil(math.log10(max(positive))), low + 1)
    tics = ", ".join(f'"{format_power_of_ten_ns(e)}" 1e{e}' for e in range(low, high + 1))
    # A hair wider than the end tics: gnuplot drops a tic that lies exactly on the range's end.
    return f"set ytics ({tics})\nset yrange [{0.999 * 10.0 ** low:g}:{1.001 * 10.0 ** high:g}]"


def format_power_of_ten_ns(exponent: int) -> str:
    units = ("ns", "µs", "ms", "s")
    unit = min(max(exponent, 0) // 3, len(units) - 1)
    return f"{10 ** (exponent - 3 * unit):g} {units[unit]}"


def latency_vs_payload_plot(perf: PerfRun, mode: str) -> Optional[Plot]:
    series = []
    payloads = []
    for transport in perf.transports:
        rows = [r for r in measured_rows(perf, "pingpong", mode)
                if r.transport == transport.name and r.fanout == 1 and r.p50_ns]
        if rows:
            points = [(float(r.payload_bytes), float(r.p50_ns or 0)) for r in rows]
            payloads += [r.payload_bytes for r in rows]
            series.append(Series(transport.name, points, series_style(perf, transport.name)))
    if not series:
        return None
    head = "\n".join([
        "set logscale xy", "set xlabel 'payload'", "set ylabel 'one-way latency, p50'",
        f"set xtics ({payload_tics(payloads)}) rotate by -45",
        latency_axis(y for s in series for _, y in s.points),
        f"set xrange [{min(payloads) / 1.5}:{max(payloads) * 1.5}]"])
    return Plot(f"latency-vs-payload-{mode}.svg",
                f"ping-pong p50 vs payload, {mode} (touch excluded)", series, head, "linespoints")


# gnuplot reads a tic label as a format: a literal % is %%.
PERCENTILE_TICS = '("0%%" 1, "90%%" 10, "99%%" 100, "99.9%%" 1e3, "99.99%%" 1e4, ' \
                  '"99.999%%" 1e5, "99.9999%%" 1e6)'


def percentile_rows(perf: PerfRun) -> list[Row]:
    """Busy 64 B ping-pong rows with an .hgrm file, and the floor's at whatever size it ran (the
    harness's floor is one word: 8 B) as the reference line."""
    busy = [r for r in measured_rows(perf, "pingpong", "busy")
            if r.fanout == 1 and r.hgrm is not None]
    rows = [r for r in busy if r.payload_bytes == 64]
    floors = [r for r in busy if r.transport == "floor"]
    if floors and not any(r.transport == "floor" for r in rows):
        rows.insert(0, floors[0])
    return rows


def percentile_plot(perf: PerfRun) -> Optional[Plot]:
    series = []
    for row in percentile_rows(perf):
        assert row.hgrm is not None
        points = [(p.inverse, p.value_ns) for p in read_hgrm(row.hgrm)
                  if math.isfinite(p.inverse) and p.value_ns > 0]
        title = row.transport
        if row.payload_bytes != 64:
            title += f" ({format_bytes(row.payload_bytes)})"
        if points:  # a log axis has no place for an all-zero distribution
            series.append(Series(title, points, series_style(perf, row.transport)))
    if not series:
        return None
    widest = max(x for s in series for x, _ in s.points)
    head = "\n".join([
        "set logscale xy", "set xlabel 'percentile'", "set ylabel 'one-way latency'",
        f"set xtics {PERCENTILE_TICS} rotate by -30", f"set xrange [1:{widest * 1.2:g}]",
        latency_axis(y for s in series for _, y in s.points)])
    return Plot("percentiles-64B-busy.svg", "latency by percentile, ping-pong 64 B busy",
                series, head, "lines")


def gnuplot_script(plot: Plot) -> str:
    """Data inline (datablocks) and the SVG on stdout: no temporary files, no quoting of paths."""
    lines = ["set terminal svg size 960,600 dynamic noenhanced font 'sans,13' background '#ffffff'",
             f"set title '{plot.title}'", "set key outside right top", "set grid xtics ytics mytics",
             plot.script_head]
    for index, series in enumerate(plot.series):
        lines.append(f"$data{index} << EOD")
        lines += [f"{x:.6g} {y:.6g}" for x, y in series.points]
        lines.append("EOD")
    plots = [f"$data{i} using 1:2 with {plot.drawing} {s.style} title '{s.title}'"
             for i, s in enumerate(plot.series)]
    lines.append("plot " + ", \\\n     ".join(plots))
    return "\n".join(lines) + "\n"


def render_svg(plot: Plot, directory: Path) -> Path:
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        raise ReportError("gnuplot not found: install the Debian package gnuplot-nox "
                          "(scripts/setup.sh does), or pass --no-plots")
    done = subprocess.run([gnuplot], input=gnuplot_script(plot), capture_output=True, text=True,
                          check=False)
    if done.returncode != 0 or "<svg" not in done.stdout:
        problem = (done.stderr.strip().splitlines() or ["no SVG on its output"])[-1]
        raise ReportError(f"gnuplot failed on {plot.filename}: {problem}")
    path = directory / plot.filename
    write_atomically(path, done.stdout)
    return path


def all_plots(perf: PerfRun) -> list[Plot]:
    candidates = [latency_vs_payload_plot(perf, "busy"), latency_vs_payload_plot(perf, "blocking"),
                  percentile_plot(perf)]
    return [p for p in candidates if p is not None]


# ---------------------------------------------------------------------------------------------
# The documents


def heading(level: int, text: str) -> str:
    return "#" * level + " " + text


def machine_table(perf: PerfRun) -> str:
    m, run = perf.machine, perf.run
    rows = [
        ["CPU", f"{m.cpu}, {m.cores} cores"], ["placement", m.placement],
        ["kernel", m.kernel], ["compiler", m.compiler],
        ["build", f"{m.build_type}, commit {m.git_commit}"], ["date", m.date],
        ["host", m.hostname], ["command", f"`{run.command}`"],
        ["matrix", f"{run.matrix}: {run.repeats} repeats of {run.seconds_per_repeat:g} s, "
                   "the median of the repeats reported with its spread"],
    ]
    return markdown_table(["", ""], rows, [False, False])


def machine_line(perf: PerfRun) -> str:
    m = perf.machine
    return (f"{m.cpu} ({m.cores} cores; {m.placement}), {m.kernel}, {m.compiler}, {m.build_type}, "
            f"commit {m.git_commit}, {m.date}: `{perf.run.command}`")


READING_NOTES = (
    "Latency is one-way (round trip / 2) in the medians of the repeats; writing and reading the "
    "payload is excluded and shown as *touch*. *x floor* = p50 / the p50 of the bare cache-line "
    "ping-pong measured interleaved with it. *spread* = min..max over the repeats of p50 (of "
    "msgs/s for throughput). GB/s = 10^9 bytes/s.")


def body_sections(perf: PerfRun, verdicts: Sequence[Verdict], plot_links: Sequence[tuple[str, str]],
                  level: int) -> list[str]:
    """What report.md and the README share: targets, the seed's figures, plots, tables, skips."""
    parts = [heading(level, "Targets (issue #5)"), targets_table(verdicts),
             heading(level, "Beside the seed's published figures"), seed_table(perf)]
    if plot_links:
        parts.append(heading(level, "Plots"))
        parts.append("\n\n".join(f"![{title}]({link})" for title, link in plot_links))
    parts += [heading(level, "Results"), READING_NOTES]
    parts += results_sections(perf, level + 1)
    skipped = skipped_table(perf)
    if skipped:
        parts += [heading(level, "Skipped (not plotted)"), skipped]
    return parts


def report_markdown(perf: PerfRun, verdicts: Sequence[Verdict],
                    plot_links: Sequence[tuple[str, str]]) -> str:
    parts = [heading(1, "symphony-perf report"), machine_table(perf)]
    parts += body_sections(perf, verdicts, plot_links, 2)
    parts.append(heading(2, "Transports: what each does with the bytes"))
    parts.append(markdown_table(["transport", "what it does, how it is configured"],
                                ([t.name, markdown_text(t.description)]
                                 for t in perf.transports),
                                [False, False]))
    return "\n\n".join(parts) + "\n"


def readme_section(perf: PerfRun, verdicts: Sequence[Verdict],
                   plot_links: Sequence[tuple[str, str]]) -> str:
    parts = ["<!-- generated by scripts/perf-report.py from symphony-perf's JSON; "
             "edits here are overwritten -->", machine_line(perf)]
    return "\n\n".join(parts + body_sections(perf, verdicts, plot_links, 3))


def replace_between_markers(text: str, section: str, where: str) -> str:
    """The text with everything between the two marker lines replaced by `section`."""
    for marker in (BEGIN_MARKER, END_MARKER):
        count = text.count(marker)
        if count != 1:
            problem = "not found" if count == 0 else f"found {count} times"
            raise ReportError(f"{where}: marker {marker} {problem}; the file needs exactly one "
                              f"{BEGIN_MARKER} line and one {END_MARKER} line after it")
    begin = text.index(BEGIN_MARKER) + len(BEGIN_MARKER)
    end = text.index(END_MARKER)
    if end < begin:
        raise ReportError(f"{where}: {END_MARKER} comes before {BEGIN_MARKER}")
    return text[:begin] + "\n" + section.strip("\n") + "\n" + text[end:]


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def read_readme(readme: Path) -> str:
    """The README's text, refused (before anything is written) when its markers are wrong."""
    try:
        text = readme.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{readme}: no such file (--update-readme)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{readme}: cannot read: {error}") from None
    replace_between_markers(text, "", str(readme))
    return text


def update_readme(readme: Path, text: str, plots_dir: Path, perf: PerfRun,
                  verdicts: Sequence[Verdict], plots: Sequence[Path]) -> list[Path]:
    """Copies the plots to plots_dir and rewrites the README's marked section; returns copies."""
    copies = []
    if plots:
        plots_dir.mkdir(parents=True, exist_ok=True)
        for plot in plots:
            copies.append(Path(shutil.copyfile(plot, plots_dir / plot.name)))
    links = [(c.stem, os.path.relpath(c, readme.parent)) for c in copies]
    section = readme_section(perf, verdicts, links)
    write_atomically(readme, replace_between_markers(text, section, str(readme)))
    return copies


# ---------------------------------------------------------------------------------------------
# Command line


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="perf-report.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 when the report was written (whether or not targets are met), "
               "1 on bad input (a one-line error on stderr), 2 on a bad argument.")
    parser.add_argument("json", type=Path, nargs="?", help="the file symphony-perf --json wrote")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="directory for report.md and the plots (default: the JSON's)")
    parser.add_argument("--update-readme", type=Path, metavar="FILE",
                        help=f"replace the text between {BEGIN_MARKER} and {END_MARKER} in FILE")
    parser.add_argument("--readme-plots", type=Path, metavar="DIR",
                        help="where the README's copies of the plots go "
                             "(default: docs/perf beside FILE)")
    parser.add_argument("--no-plots", action="store_true", help="tables only; gnuplot not needed")
    parser.add_argument("--check-readme", type=Path, metavar="FILE",
                        help="only check that FILE has the markers --update-readme needs (before "
                             "a long run), then exit")
    args = parser.parse_args(argv)
    if (args.json is None) == (args.check_readme is None):
        parser.error("give the JSON file, or --check-readme FILE alone")
    return args


def generate(args: argparse.Namespace) -> str:
    perf = load_perf_run(args.json)
    readme_text = read_readme(args.update_readme) if args.update_readme else None
    out = args.out or args.json.parent
    out.mkdir(parents=True, exist_ok=True)
    verdicts = evaluate_targets(perf)
    plots = [] if args.no_plots else [render_svg(p, out) for p in all_plots(perf)]
    links = [(p.stem, os.path.relpath(p, out)) for p in plots]
    write_atomically(out / "report.md", report_markdown(perf, verdicts, links))
    summary = f"wrote {out / 'report.md'} and {len(plots)} plots; targets: " \
              f"{verdict_summary(verdicts)}"
    if args.update_readme and readme_text is not None:
        plots_dir = args.readme_plots or args.update_readme.parent / "docs" / "perf"
        update_readme(args.update_readme, readme_text, plots_dir, perf, verdicts, plots)
        summary += f"; updated {args.update_readme}"
    return summary


def main(argv: Sequence[str]) -> int:
    args = parse_arguments(argv)
    try:
        if args.check_readme:
            read_readme(args.check_readme)
            print(f"perf-report: {args.check_readme} has the perf-matrix markers")
        else:
            print(f"perf-report: {generate(args)}")
    except ReportError as error:
        print(f"perf-report: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"perf-report: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
