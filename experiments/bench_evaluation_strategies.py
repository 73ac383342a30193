"""DeepMAD's evaluation-spending strategies against NNI's on NAS-Bench-Macro: mean regret at N trained networks.

    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/bench_evaluation_strategies.py [--seeds 10] [--n 100] \
        [--strategies deepmad deepmad-optuna deepmad-evolution random evolution tpe rl] [--out DIR]

Budgets: (params, MACs) (1.0M, 40M), (1.5M, 60M), (2.0M, 80M) and 45M / 55M / 65M MACs with no params budget.
Every strategy runs once per seed to N networks through NNI's sequential engine (``run_nni_strategy``, as
``deepmad-nni compare``); the regret at n <= N is the reference accuracy (the best in the budget) minus the
best accuracy among its first n trained networks, in accuracy points, averaged over seeds.  Also printed:
the fewest distinct networks any run trained.  Rows go to DIR/rows.jsonl as they finish (a rerun skips them).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")

NS = (5, 10, 30, 100)
BUDGETS = (("1.0M/40M", 40e6, 1.0e6), ("1.5M/60M", 60e6, 1.5e6), ("2.0M/80M", 80e6, 2.0e6),
           ("45M", 45e6, None), ("55M", 55e6, None), ("65M", 65e6, None))


def strategy(name, seed, flops, params):
    import deepmad_nni as dm
    from deepmad_nni.compare.strategies import NNI_STRATEGIES
    if name == "deepmad-optuna":
        return dm.DeepMADOptuna(flops=flops, params=params, seed=seed)
    if name == "deepmad-evolution":
        return dm.DeepMADEvolution(flops=flops, params=params, seed=seed)
    return NNI_STRATEGIES[name](seed)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--strategies", nargs="+", default=["deepmad", "deepmad-optuna", "deepmad-evolution", "random",
                                                        "evolution", "tpe", "rl"])
    ap.add_argument("--out", default="runs/bench-evaluation-strategies")
    args = ap.parse_args(argv)
    from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, default_path
    from deepmad_nni.compare.bench_track import BenchmarkProblem, network_of_key
    from deepmad_nni.compare.harness import Budget, run_deepmad, run_nni_strategy
    bench = NasBenchMacro(default_path())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    done = {}
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            r = json.loads(line)
            done[(r["strategy"], r["budget"], r["seed"])] = r
    ns = [n for n in NS if n <= args.n]
    for bname, flops, params in BUDGETS:
        problem = BenchmarkProblem(bench, Budget(bname, flops=flops, params=params))
        for name in args.strategies:
            for seed in range(1 if name == "deepmad" else args.seeds):
                if (name, bname, seed) in done:
                    continue
                t0 = time.perf_counter()
                if name == "deepmad":
                    rec = run_deepmad(problem, n_max=args.n)
                else:
                    rec = run_nni_strategy(problem, name, strategy(name, seed, flops, params), n_max=args.n, seed=seed)
                accs = [c.accuracy for c in rec.candidates]
                row = {"strategy": name, "budget": bname, "seed": seed, "trained": len(accs),
                       "distinct": len({network_of_key(c.arch) for c in rec.candidates}),
                       "regret": {n: (problem.reference_accuracy - max(accs[:n])) if accs else None for n in ns},
                       "search_cpu_s": round(rec.search_cpu_s, 2), "wall_s": round(time.perf_counter() - t0, 2),
                       "note": rec.note}
                done[(name, bname, seed)] = row
                with rows_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{bname} {name} seed {seed}: {row['distinct']} distinct, regret "
                      f"{[round(v, 2) if v is not None else None for v in row['regret'].values()]} "
                      f"({row['wall_s']} s)", flush=True)
    print("\n| strategy | " + " | ".join(f"N={n}" for n in ns) + " | fewest distinct |")
    print("|---|" + "---|" * (len(ns) + 1))
    for name in args.strategies:
        cells = []
        for n in ns:
            per = []
            for bname, _, _ in BUDGETS:
                vals = [r["regret"][str(n)] if str(n) in r["regret"] else r["regret"][n]
                        for (s, b, _), r in done.items() if s == name and b == bname]
                vals = [v for v in vals if v is not None]
                per.append(f"{statistics.mean(vals):.2f}" if vals else "-")
            cells.append(" / ".join(per))
        fewest = min((r["distinct"] for (s, _, _), r in done.items() if s == name), default=0)
        print(f"| {name} | " + " | ".join(cells) + f" | {fewest} |")
    print("\nbudgets in each cell: " + " / ".join(b for b, _, _ in BUDGETS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
