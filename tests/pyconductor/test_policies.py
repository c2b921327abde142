"""Policies, the simulator, training and the evaluation statistics: pure Python, no bus."""

import math

import numpy as np
import pytest

from symphony_conductor.evaluation import evaluate, mean_ci, compare, report, t_ppf
from symphony_conductor.learned import FEATURES, LinearBanditPolicy, train
from symphony_conductor.policy import (Admission, InstanceHealth, LeastOutstanding, Observation,
                                       RoundRobin, RuleBased, baselines)
from symphony_conductor.simulator import WorkloadConfig, run_episode

SMALL = WorkloadConfig(requests=1500)


def obs(up, q, svc=None, lat=None, age=None, crashes=None, oldest=None):
    n = len(up)
    nan = np.full(n, np.nan)
    return Observation(0.0, [f"x/{i}" for i in range(n)], np.array(up, bool), np.array(q),
                       nan if lat is None else np.array(lat, float),
                       nan if svc is None else np.array(svc, float),
                       np.full(n, 100.0) if age is None else np.array(age, float),
                       np.zeros(n, int) if crashes is None else np.array(crashes),
                       None if oldest is None else np.array(oldest, float))


def test_round_robin_cycles_over_instances_that_are_up():
    p = RoundRobin()
    o = obs([True, False, True], [0, 0, 0])
    assert [p.choose(o) for _ in range(4)] == [0, 2, 0, 2]


def test_least_outstanding_picks_the_shortest_queue_and_rotates_ties():
    p = LeastOutstanding()
    assert p.choose(obs([True, True, True], [3, 1, 2])) == 1
    o = obs([True, True, True], [1, 1, 1])
    assert sorted(p.choose(o) for _ in range(3)) == [0, 1, 2]
    assert p.choose(obs([True, False, True], [5, 0, 4])) == 2


def test_rule_based_penalizes_outliers_and_cold_instances():
    p = RuleBased()
    # instance 0 is 5x slower than the median: two extra requests counted against it
    assert p.choose(obs([True, True, True], [0, 1, 1], svc=[10.0, 2.0, 2.0])) == 1
    # instance 1 was restarted 0.1 s ago: one extra
    assert p.choose(obs([True, True], [1, 0], age=[100, 0.1])) in (0, 1)
    assert p.choose(obs([True, True], [1, 0], age=[100, 0.1], svc=[2, 2])) in (0, 1)
    assert p.choose(obs([True, True], [2, 0], age=[100, 0.1])) == 1


def test_policies_never_choose_an_instance_that_is_down():
    o = obs([False, True, False, True], [0, 9, 0, 9], svc=[1, 5, 1, 5])
    for p in baselines() + [LinearBanditPolicy()]:
        for _ in range(5):
            assert o.up[p.choose(o)], p.name


def test_default_restart_and_admission_decisions():
    p = RoundRobin()
    d = p.should_restart(InstanceHealth("x/0", "FAILED", "too many crashes", 5, 3))
    assert d.restart and d.delay_s == 8.0
    assert not p.should_restart(InstanceHealth("x/0", "CRASHED", "", 1, 1)).restart
    assert p.admit(obs([True], [3]), max_outstanding=3).admission is Admission.DELAY
    assert p.admit(obs([True], [2]), max_outstanding=3).admission is Admission.ADMIT


def test_simulator_is_deterministic_per_seed_and_serves_every_request():
    a = run_episode(LeastOutstanding(), 7, SMALL)
    b = run_episode(LeastOutstanding(), 7, SMALL)
    assert np.array_equal(a.latencies_ms, b.latencies_ms)
    assert a.latencies_ms.size == SMALL.requests
    assert np.all(np.isfinite(a.latencies_ms)) and np.all(a.latencies_ms > 0)
    c = run_episode(LeastOutstanding(), 8, SMALL)
    assert not np.array_equal(a.latencies_ms, c.latencies_ms)


def test_simulator_crashes_fail_and_retry_requests():
    cfg = WorkloadConfig(requests=1500, crash_rate_per_s=5.0)
    r = run_episode(RoundRobin(), 3, cfg)
    assert r.crashes > 0 and r.retries > 0
    assert r.latencies_ms.size == cfg.requests and np.all(np.isfinite(r.latencies_ms))


def test_save_and_load_round_trip(tmp_path):
    p = train(range(3), SMALL)
    path = tmp_path / "bandit.npz"
    p.save(path)
    q = LinearBanditPolicy.load(path)
    assert np.array_equal(p.w, q.w) and np.array_equal(p.A, q.A) and q.samples == p.samples
    assert q.config == p.config
    # the same decisions on the same world
    assert np.array_equal(run_episode(p, 99, SMALL).latencies_ms,
                          run_episode(q, 99, SMALL).latencies_ms)


def test_load_refuses_another_feature_set(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, format_version=2, features=np.array(FEATURES[:-1]), w=np.zeros(3),
             A=np.eye(3), b=np.zeros(3), samples=0, config=np.array([1, 0.1, 20, 256, 2]))
    with pytest.raises(ValueError, match="features"):
        LinearBanditPolicy.load(path)


def test_learned_policy_beats_round_robin_on_fixed_seed_workloads():
    # Trained on seeds 0-9, evaluated on held-out seeds 500-504: deterministic (no timing).
    learned = train(range(10), SMALL)
    runs = evaluate(lambda: [RoundRobin(), learned], range(500, 505), SMALL)
    rr, lp = runs["round-robin"], runs["learned-bandit"]
    assert np.all(lp.mean_ms < rr.mean_ms), (lp.mean_ms, rr.mean_ms)
    assert lp.p99_ms.mean() < rr.p99_ms.mean()


def test_t_quantiles_and_intervals():
    assert t_ppf(0.975, 29) == pytest.approx(2.0452, abs=1e-3)
    assert t_ppf(0.975, 1) == pytest.approx(12.706, abs=1e-2)
    assert t_ppf(0.975, 1e6) == pytest.approx(1.95996, abs=1e-3)
    ci = mean_ci([1, 2, 3, 4, 5])
    assert ci.mean == 3 and ci.low == pytest.approx(3 - 2.7764 * math.sqrt(2.5 / 5), abs=1e-3)


def test_report_says_wins_only_when_the_interval_excludes_zero():
    from symphony_conductor.evaluation import PolicyRuns
    seeds = list(range(20))
    base = np.linspace(10, 20, 20)
    runs = {
        "a": PolicyRuns("a", seeds, base - 1.0 + 0.01 * np.sin(base), base * 2 - 1.0),
        "b": PolicyRuns("b", seeds, base, base * 2),
        "c": PolicyRuns("c", seeds, base + np.where(np.arange(20) % 2 == 0, -3.0, 3.0), base * 2),
    }
    cmp = {(c.baseline, c.metric): c.wins for c in compare(runs, "a")}
    assert cmp[("b", "mean_ms")] and cmp[("b", "p99_ms")]
    assert not cmp[("c", "mean_ms")]
    text = report(runs, "a")
    assert "does not win against every baseline" in text


def test_learned_policy_measures_service_times_from_its_own_dispatches_and_replies():
    from symphony_conductor.policy import Outcome
    p = LinearBanditPolicy()
    # one instance, two requests dispatched at t=0: replies at 2 ms and 5 ms, so the second's
    # service is 3 ms (it started when the first replied), not 5 / 2
    f = []
    for q in (0, 1):
        o = obs([True], [q], age=[100.0])
        assert p.choose(o) == 0
        f.append(p.last_features())
    p.observe(Outcome(0, f[0], 2.0))
    p.observe(Outcome(0, f[1], 5.0))
    a = p.config.service_alpha
    z = p.features(obs([True], [0], svc=[99.0], age=[100.0]))
    assert z[0][FEATURES.index("log_service")] == pytest.approx(math.log((1 - a) * 2.0 + a * 3.0))
    # a restart forgets it: back to the observation's estimate
    z = p.features(obs([True], [0], svc=[7.0], age=[0.01]))
    assert z[0][FEATURES.index("log_service")] == pytest.approx(math.log(7.0))
