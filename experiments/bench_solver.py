"""Benchmark: the solver on every paper preset, beside the official-style evolutionary search.

For each preset it prints the solver's time, objective, status, proven bound and gap (median and largest
time over ``--repeats`` runs, one core) and its peak memory (tracemalloc, in a separate solve of at most
``--memory-time-limit`` seconds, since tracing slows the search and the design depends on the time).
With no ``--time-limit`` the solves are quick solves (the rounded continuous relaxation and its bound).
Then the evolutionary baseline, run the way the official implementation searches (population 256, 2
mutated blocks per child, up to 500,000 evaluations of the same objective under the same constraints),
with its time, its best objective and the number of evaluations it needed to first reach the solver's
objective.

    OMP_NUM_THREADS=1 python experiments/bench_solver.py [--time-limit T] [--evaluations 500000] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepmad_nni.core import PRESETS, Program, get_family, solve  # noqa: E402
from deepmad_nni.core.evolution import evolve  # noqa: E402


def bench_preset(name: str, args) -> dict:
    p = PRESETS[name]
    fam = get_family(p.family)
    runs = []
    for r in range(args.repeats):   # timed runs: tracemalloc would slow them down, so no tracing here
        runs.append(solve(fam, flops=p.flops, params=p.params, rho=p.rho, time_limit=args.time_limit, seed=r))
    tracemalloc.start()             # a separate, shorter run for the peak memory
    limit = None if args.time_limit is None else min(args.memory_time_limit, args.time_limit)
    solve(fam, flops=p.flops, params=p.params, rho=p.rho, time_limit=limit)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    best_res = max(runs, key=lambda r: r.objective)
    prog = Program.create(fam, flops=p.flops, params=p.params, rho=p.rho)
    t0 = time.perf_counter()
    evo = evolve(prog, evaluations=args.evaluations, seed=0)
    evo_time = time.perf_counter() - t0
    reach = next((n for n, v in evo.history if v >= best_res.objective), None)
    return {
        "preset": name, "family": p.family, "flops_budget": p.flops, "params_budget": p.params, "rho": p.rho,
        "solve_time_median_s": statistics.median(r.time_s for r in runs),
        "solve_time_max_s": max(r.time_s for r in runs),
        "solve_objective_median": statistics.median(r.objective for r in runs),
        "solve_objective_best": best_res.objective, "status": best_res.status, "bound": best_res.bound,
        "gap_pct": 100 * best_res.relative_gap, "peak_mem_mb": peak / 2**20,
        "flops": best_res.flops, "params": best_res.params, "effectiveness": best_res.effectiveness,
        "evo_time_s": evo_time, "evo_evaluations": evo.evaluations, "evo_objective": evo.objective,
        "evo_evals_to_reach_solver": reach,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--time-limit", type=float, default=None,
                    help="solver time limit per solve (s); default: the quick solve")
    ap.add_argument("--repeats", type=int, default=3, help="solves per preset (median time)")
    ap.add_argument("--memory-time-limit", type=float, default=5.0,
                    help="time limit of the separate solve traced for peak memory (s)")
    ap.add_argument("--evaluations", type=int, default=500_000, help="evolutionary baseline evaluations")
    ap.add_argument("--out", help="directory for results.json (optional)")
    args = ap.parse_args(argv)
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: set OMP_NUM_THREADS=1 to measure on one core", file=sys.stderr)
    header = (f"{'preset':7} {'solve s':>8} {'max s':>6} {'objective':>10} {'median obj':>10} {'status':>18} "
              f"{'gap %':>6} {'mem MB':>7} | "
              f"{'evo s':>6} {'evo evals':>9} {'evo objective':>13} {'evals to reach':>14}")
    print(header)
    rows = []
    for name in args.presets:
        row = bench_preset(name, args)
        rows.append(row)
        reach = row["evo_evals_to_reach_solver"]
        print(f"{name:7} {row['solve_time_median_s']:8.3f} {row['solve_time_max_s']:6.3f} "
              f"{row['solve_objective_best']:10.1f} {row['solve_objective_median']:10.1f} {row['status']:>18} "
              f"{row['gap_pct']:6.2f} {row['peak_mem_mb']:7.1f} | {row['evo_time_s']:6.1f} "
              f"{row['evo_evaluations']:9d} {row['evo_objective']:13.1f} {reach if reach else 'never':>14}", flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_solver.json").write_text(json.dumps(rows, indent=1))
        print(f"wrote {out / 'bench_solver.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
