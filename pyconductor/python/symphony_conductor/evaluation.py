"""Honest evaluation of policies in the simulator: per-seed metrics on held-out seeds, 95%
confidence intervals (Student's t), and paired per-seed differences.

A policy *wins* against a baseline on a metric only when the 95% interval of its paired
per-seed difference (policy - baseline) lies entirely below zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from .policy import Policy
from .simulator import WorkloadConfig, run_episode


def _betacf(a: float, b: float, x: float) -> float:
    # continued fraction of the incomplete beta function (modified Lentz)
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """CDF of Student's t distribution with ``df`` degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t (bisection on :func:`t_cdf`; scipy is not needed)."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def excludes_zero_below(self) -> bool:
        return self.high < 0.0

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def mean_ci(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean and two-sided ``level`` confidence interval (t distribution, n-1 df)."""
    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 2:
        raise ValueError("a confidence interval needs at least 2 values")
    m = float(x.mean())
    half = t_ppf(0.5 + level / 2.0, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(m, m - half, m + half, n)


@dataclass
class PolicyRuns:
    """One policy's per-seed metrics (same seed order for every policy: paired)."""

    name: str
    seeds: list[int]
    mean_ms: np.ndarray
    p99_ms: np.ndarray


def evaluate(make_policies: Callable[[], list[Policy]], seeds: Iterable[int],
             workload: WorkloadConfig | None = None) -> dict[str, PolicyRuns]:
    """Runs every policy on every seed. ``make_policies`` gives fresh policy objects per seed
    (no state carried from one seed to the next)."""
    seeds = list(seeds)
    out: dict[str, PolicyRuns] = {}
    for s in seeds:
        for p in make_policies():
            r = run_episode(p, s, workload)
            runs = out.setdefault(p.name, PolicyRuns(p.name, [], np.array([]), np.array([])))
            runs.seeds.append(s)
            runs.mean_ms = np.append(runs.mean_ms, r.mean_ms)
            runs.p99_ms = np.append(runs.p99_ms, r.p99_ms)
    return out


@dataclass
class Comparison:
    candidate: str
    baseline: str
    metric: str
    diff: Interval  #: candidate - baseline, per seed

    @property
    def wins(self) -> bool:
        return self.diff.excludes_zero_below()


def compare(runs: dict[str, PolicyRuns], candidate: str,
            level: float = 0.95) -> list[Comparison]:
    """Paired per-seed differences of ``candidate`` against every other policy, both metrics."""
    c = runs[candidate]
    out = []
    for name, b in runs.items():
        if name == candidate:
            continue
        if b.seeds != c.seeds:
            raise ValueError("unpaired runs: the seeds differ")
        for metric in ("mean_ms", "p99_ms"):
            d = getattr(c, metric) - getattr(b, metric)
            out.append(Comparison(candidate, name, metric, mean_ci(d, level)))
    return out


def report(runs: dict[str, PolicyRuns], candidate: str, level: float = 0.95) -> str:
    """A plain-text table: per policy mean and p99 with their intervals, then the paired
    differences and the verdict."""
    pct = int(round(level * 100))
    lines = [f"{'policy':<20} {'mean latency ms [' + str(pct) + '% CI]':<34} "
             f"{'p99 latency ms [' + str(pct) + '% CI]':<34}"]
    for name, r in runs.items():
        lines.append(f"{name:<20} {str(mean_ci(r.mean_ms, level)):<34} "
                     f"{str(mean_ci(r.p99_ms, level)):<34}")
    lines.append("")
    lines.append(f"paired per-seed difference, {candidate} - baseline "
                 f"(negative = {candidate} faster), n = {len(runs[candidate].seeds)} seeds:")
    all_win = True
    for cmp in compare(runs, candidate, level):
        verdict = "WINS" if cmp.wins else "does not win"
        all_win &= cmp.wins
        lines.append(f"  vs {cmp.baseline:<18} {cmp.metric:<8} {str(cmp.diff):<34} {verdict}")
    lines.append("")
    lines.append(f"verdict: {candidate} " + (
        "wins against every baseline on mean and p99" if all_win else
        "does not win against every baseline on both metrics (see the lines above)"))
    return "\n".join(lines)
