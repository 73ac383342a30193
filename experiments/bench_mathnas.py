"""MathNAS on NAS-Bench-Macro: regret at N = 17 / 30 / 100 evaluations and the ILP's solve time, beside the
other strategies at equal N (``deepmad_nni.compare.compare``, the same harness and accounting).

Budgets (params, MACs): (1.0M, 40M), (1.5M, 60M), (2.0M, 80M), and 45M / 55M / 65M MACs with no params budget;
seeds 0-9.  Regret = best benchmark accuracy within the budget minus the best accuracy the strategy measured
among its first N evaluations (estimate evaluations included).  Also printed: the accuracy of the ILP's first
design (MathNAS's pick once its estimate is done: the 18th evaluation when nothing was pruned) and MathNAS
variants (``--variants``: cheapest base, least-squares estimate, refit) run alone.

    PYTHONPATH=. python experiments/bench_mathnas.py --out /tmp/bench-mathnas [--strategies mathnas,random,...]

Resumable: the compare folder keeps finished runs.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

BUDGETS = [("1.0M/40M", 40e6, 1.0e6), ("1.5M/60M", 60e6, 1.5e6), ("2.0M/80M", 80e6, 2.0e6),
           ("45M", 45e6, None), ("55M", 55e6, None), ("65M", 65e6, None)]
NS = (17, 30, 100)
VARIANTS = {"mathnas-cheapest": dict(base="cheapest"), "mathnas-lstsq": dict(estimate="lstsq"),
            "mathnas-refit": dict(refit=True)}


def _budgets():
    from deepmad_nni.compare.harness import Budget
    return [Budget(name, flops=f, params=p) for name, f, p in BUDGETS]


def comparison(out, strategies, seeds):
    from deepmad_nni.compare.runner import compare
    t0 = time.perf_counter()
    result = compare(track="nas-bench-macro", out_dir=out, strategies=strategies, budgets=_budgets(), seeds=seeds,
                     ns=NS, progress=lambda m: None)
    print(f"# compare: {len(result['rows'])} rows in {time.perf_counter() - t0:.0f} s ({result['markdown']})")
    print("| budget | strategy | N=17 | N=30 | N=100 |")
    print("|---|---|---|---|---|")
    rows = {(r["budget"], r["strategy"], r["N"]): r for r in result["rows"]}
    for name, _, _ in BUDGETS:
        for s in strategies:
            cells = [rows.get((name, s, n)) for n in NS]
            text = [f"{r['regret']:.2f} ± {r['regret_std']:.2f}" if r else "-" for r in cells]
            print(f"| {name} | {s} | " + " | ".join(text) + " |")


def alone(seeds, variants):
    """MathNAS (and variants) run alone: regret at N, the ILP pick's regret, ILP time per run."""
    from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, resolve_path
    from deepmad_nni.compare.bench_track import BenchmarkProblem
    from deepmad_nni.compare.mathnas_track import make_mathnas
    from deepmad_nni.compare.harness import quiet_nni, run_nni_strategy
    from search_spaces.nas_bench_macro import key_of_sample
    bench = NasBenchMacro(resolve_path(None))
    print("| budget | variant | N=17 | N=30 | N=100 | ILP pick (first search design) | estimate evals | ILP s / run "
          "(solves) | cuts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for budget in _budgets():
        problem = BenchmarkProblem(bench, budget)
        for variant, settings in variants.items():
            regrets, picks, evals, ilp, calls, cuts = {n: [] for n in NS}, [], [], [], [], []
            for seed in seeds:
                with quiet_nni():
                    strategy = make_mathnas(problem, seed, **settings)
                    record = run_nni_strategy(problem, variant, strategy, n_max=max(NS), seed=seed)
                for n in NS:
                    regrets[n].append(record.at(n)["regret"])
                first = next((e for e in strategy.history if e.phase == "search"), None)
                if first is not None:
                    picks.append(problem.reference_accuracy - bench[key_of_sample(first.sample)].mean_acc)
                evals.append(sum(e.phase == "estimate" for e in strategy.history))
                ilp.append(strategy.ilp_seconds)
                calls.append(strategy.ilp_calls)
                cuts.append(strategy.cuts)
            m = statistics.fmean
            cells = " | ".join(f"{m(regrets[n]):.2f} ± {statistics.pstdev(regrets[n]):.2f}" for n in NS)
            print(f"| {budget.name} | {variant} | {cells} | {m(picks):.2f} ± {statistics.pstdev(picks):.2f} | "
                  f"{m(evals):.1f} | {m(ilp):.2f} ({m(calls):.0f}) | {sum(cuts)} |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-mathnas", help="compare output folder")
    parser.add_argument("--strategies", default="mathnas,deepmad-evolution,random,evolution,tpe",
                        help="strategies of the comparison (comma list; '' to skip it)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--variants", default="mathnas", help="comma list of mathnas, " + ", ".join(VARIANTS) +
                        " run alone ('' to skip)")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))
    if args.strategies:
        comparison(args.out, args.strategies.split(","), seeds)
    if args.variants:
        chosen = {v: ({} if v == "mathnas" else VARIANTS[v]) for v in args.variants.split(",")}
        alone(seeds, chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
