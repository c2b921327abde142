#!/usr/bin/python3
"""Model selection for the learned policy on *validation* seeds: disjoint from the training
seeds (default 0-59) and from the benchmark's held-out evaluation seeds (10000-10029), so the
benchmark's numbers are not tuned on the seeds they are measured on.

For each (speed_weight, service_alpha) given, trains on the training seeds and reports the
paired per-seed difference against least-outstanding and rule-based on the validation seeds.
The default of ``BanditConfig`` is the one picked this way (5000-5059: speed_weight 0.7,
service_alpha 0.3).

    /usr/bin/python3 pyconductor/scripts/policy_select.py 0.6,0.3 0.7,0.3 0.8,0.3 1.0,0.3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from symphony_conductor.evaluation import compare, evaluate  # noqa: E402
from symphony_conductor.learned import BanditConfig, train  # noqa: E402
from symphony_conductor.policy import LeastOutstanding, RuleBased  # noqa: E402
from symphony_conductor.simulator import WorkloadConfig  # noqa: E402


def seed_range(text: str) -> list[int]:
    a, _, b = text.partition(":")
    return list(range(int(a), int(b)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("configs", nargs="+", help="speed_weight,service_alpha")
    ap.add_argument("--train-seeds", default="0:60")
    ap.add_argument("--val-seeds", default="5000:5060")
    args = ap.parse_args(argv)
    train_seeds, val_seeds = seed_range(args.train_seeds), seed_range(args.val_seeds)
    if set(train_seeds) & set(val_seeds) or set(val_seeds) & set(range(10000, 10030)):
        ap.error("validation seeds must be disjoint from training and evaluation seeds")
    workload = WorkloadConfig()
    for spec in args.configs:
        sw, alpha = (float(x) for x in spec.split(","))
        learned = train(train_seeds, workload, config=BanditConfig(speed_weight=sw,
                                                                    service_alpha=alpha))
        runs = evaluate(lambda: [LeastOutstanding(), RuleBased(), learned], val_seeds, workload)
        parts = [f"{c.baseline} {c.metric} {c.diff}" for c in compare(runs, learned.name)]
        print(f"speed_weight={sw} service_alpha={alpha}: " + "; ".join(parts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
