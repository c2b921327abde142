#!/usr/bin/python3
"""Trains the learned routing policy in the simulator and compares it with the baselines on
held-out seeds (disjoint from the training seeds), with 95% confidence intervals and paired
per-seed differences.

    /usr/bin/python3 pyconductor/scripts/policy_bench.py                 # train 0-59, eval 10000-10029
    /usr/bin/python3 pyconductor/scripts/policy_bench.py --load p.npz    # evaluate saved weights
    /usr/bin/python3 pyconductor/scripts/policy_bench.py --save p.npz --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from symphony_conductor.evaluation import compare, evaluate, mean_ci, report  # noqa: E402
from symphony_conductor.learned import LinearBanditPolicy, train  # noqa: E402
from symphony_conductor.policy import baselines  # noqa: E402
from symphony_conductor.simulator import WorkloadConfig  # noqa: E402


def seed_range(text: str) -> list[int]:
    a, _, b = text.partition(":")
    return list(range(int(a), int(b)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--train-seeds", default="0:60", help="a:b, half-open (default 0:60)")
    ap.add_argument("--eval-seeds", default="10000:10030", help="a:b, half-open (default 10000:10030)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--requests", type=int, default=4000, help="requests per episode")
    ap.add_argument("--save", help="write the trained weights here (.npz)")
    ap.add_argument("--load", help="evaluate these weights instead of training")
    ap.add_argument("--json", help="write per-seed results and intervals here")
    args = ap.parse_args(argv)

    train_seeds, eval_seeds = seed_range(args.train_seeds), seed_range(args.eval_seeds)
    if set(train_seeds) & set(eval_seeds):
        ap.error("training and evaluation seeds overlap")
    if len(eval_seeds) < 20:
        ap.error("at least 20 evaluation seeds")
    workload = WorkloadConfig(requests=args.requests)

    t0 = time.monotonic()
    if args.load:
        learned = LinearBanditPolicy.load(args.load)
        print(f"loaded {args.load} ({learned.samples} training samples)")
    else:
        learned = train(train_seeds, workload, epochs=args.epochs)
        print(f"trained on seeds {args.train_seeds} x {args.epochs} epoch(s), "
              f"{learned.samples} attempts, {time.monotonic() - t0:.1f} s")
        if args.save:
            learned.save(args.save)
            print(f"saved {args.save}")
    print(f"weights: {learned.describe()}")
    print(f"workload: {workload}")

    def make():
        return baselines() + [learned]

    t1 = time.monotonic()
    runs = evaluate(make, eval_seeds, workload)
    print(f"evaluated {len(runs)} policies x {len(eval_seeds)} held-out seeds "
          f"({args.eval_seeds}) in {time.monotonic() - t1:.1f} s\n")
    print(report(runs, learned.name))

    if args.json:
        out = {
            "train_seeds": args.train_seeds, "eval_seeds": args.eval_seeds,
            "policies": {n: {"seeds": r.seeds, "mean_ms": r.mean_ms.tolist(),
                             "p99_ms": r.p99_ms.tolist(),
                             "mean_ci": vars(mean_ci(r.mean_ms)), "p99_ci": vars(mean_ci(r.p99_ms))}
                         for n, r in runs.items()},
            "comparisons": [{"baseline": c.baseline, "metric": c.metric, "diff": vars(c.diff),
                             "wins": c.wins} for c in compare(runs, learned.name)],
        }
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
