"""The table of bench_off_preset.py and bench_random_budgets.py: per budget, the quick solve beside a timed solve
and the official-style evolution.

For each budget it prints the quick solve's time, objective and proven gap, a solve with ``--time-limit``
seconds, and the best of the evolutionary baseline (population 256, 2 mutated blocks per child,
``--evaluations`` candidates), with the differences; then how many budgets the quick solve is below the
evolution on, how many it is more than 0.1% below the timed solve on, and its median time.  ``--reference
FILE`` (the JSON of an earlier run) reuses its timed-solve and evolution columns, so that only the quick
solve runs again (with ``--rerun-timed``, the quick and the timed solves: only the evolution is reused).
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepmad_nni.core import Program, get_family, solve  # noqa: E402
from deepmad_nni.core.evolution import evolve  # noqa: E402

FAR = 1e-3    # "more than 0.1% below"
SAME = 1e-9   # relative: objectives closer than this are the same design's (float noise)


def read_rows(files) -> list[dict]:
    """The rows of benchmark JSONs (this table's, e.g. experiments/budgets/), file after file."""
    return [row for f in files for row in json.loads(Path(f).read_text())]


def add_arguments(ap, *, time_limit: float):
    ap.add_argument("--time-limit", type=float, default=time_limit, help="time limit of the second solve (s)")
    ap.add_argument("--evaluations", type=int, default=500_000, help="evolutionary baseline evaluations")
    ap.add_argument("--reference", help="JSON of an earlier run: reuse its timed-solve and evolution columns")
    ap.add_argument("--rerun-timed", action="store_true",
                    help="with --reference, solve the timed column again (reuse only the evolution's)")
    ap.add_argument("--out", help="directory for the JSON of this run (optional)")


def _pct(a: float, b: float) -> float:
    return 100.0 * (a - b) / abs(b)


def run(budgets, args, name: str) -> list[dict]:
    """The table over ``budgets`` ((family, FLOPs, params, rho_0) each); writes ``name``.json under --out."""
    reference = {}
    if args.reference:
        for row in json.loads(Path(args.reference).read_text()):
            reference[(row["family"], row["flops"], row["params"], row["rho"])] = row
    print(f"{'family':24} {'GFLOPs':>6} {'M params':>8} {'rho':>5} | {'quick s':>7} {'quick':>9} {'gap %':>6} | "
          f"{'limit':>9} {'gap %':>6} | {'evolution':>9} | {'quick-evo':>9} {'quick-lim':>9}")
    rows = []
    for family, flops, params, rho in budgets:
        t0 = time.perf_counter()
        quick = solve(family, flops=flops, params=params, rho=rho)
        quick_s = time.perf_counter() - t0
        old = reference.get((family, flops, params, rho))
        if old is not None and not args.rerun_timed:
            limit, limit_gap = old["limit"], old["limit_gap_pct"]
        else:
            limited = solve(family, flops=flops, params=params, rho=rho, time_limit=args.time_limit)
            limit, limit_gap = limited.objective, 100 * limited.relative_gap
        if old is not None:
            evo_best = old["evolution"]
        else:
            program = Program.create(get_family(family), flops=flops, params=params, rho=rho)
            evo_best = evolve(program, evaluations=args.evaluations, seed=0).objective
        row = {"family": family, "flops": flops, "params": params, "rho": rho, "quick_s": quick_s,
               "quick": quick.objective, "quick_gap_pct": 100 * quick.relative_gap, "limit_s": args.time_limit,
               "limit": limit, "limit_gap_pct": limit_gap, "evolution": evo_best}
        rows.append(row)
        print(f"{family:24} {flops / 1e9:6.2f} {params / 1e6:8.2f} {rho:5.3f} | {quick_s:7.3f} {quick.objective:9.1f} "
              f"{row['quick_gap_pct']:6.2f} | {limit:9.1f} {limit_gap:6.2f} | {evo_best:9.1f} | "
              f"{_pct(quick.objective, evo_best):+8.2f}% {_pct(quick.objective, limit):+8.2f}%", flush=True)
    below = sum(r["quick"] < r["evolution"] - SAME * abs(r["evolution"]) for r in rows)
    far = sum(r["quick"] < r["limit"] * (1 - FAR) for r in rows)
    print(f"quick solve below the evolution on {below} of {len(rows)} budgets; more than 0.1% below the "
          f"timed solve on {far}; median quick time {statistics.median(r['quick_s'] for r in rows):.3f} s")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"{name}.json").write_text(json.dumps(rows, indent=2))
        print(f"wrote {Path(args.out) / f'{name}.json'}")
    return rows
