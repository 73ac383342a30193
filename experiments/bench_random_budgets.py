"""Benchmark: the quick solve on budgets drawn at random, beside a timed solve and the official-style evolution.

The budgets are not chosen by anyone watching the solver: for each family, ``--per-family`` budgets are
drawn with ``numpy.random.default_rng(--seed)`` (default seed 14, the issue's number):

* FLOPs and params, each log-uniformly and independently between 4 x the family's smallest design and 4 x
  the geometric mean of its smallest and largest designs (the largest design of a family is far beyond any
  practical budget: 500 GFLOPs for the ResNet families);
* rho_0 log-uniformly within the range where it binds for those budgets (core/rho_range.py: from the
  smallest rho of any design within them to the rho of the optimum without the constraint).

Draws that no design meets are drawn again.  For each budget it prints the quick solve's time, objective
and proven gap, a solve with ``--time-limit`` seconds, and the best of the evolutionary baseline
(population 256, 2 mutated blocks per child, ``--evaluations`` candidates), with the differences.
``--reference FILE`` (this script's JSON from an earlier run) reuses its timed-solve and evolution
columns instead of recomputing them, so that only the quick solve runs again (with ``--rerun-timed``, the
quick and the timed solves: only the evolution is reused).

    OMP_NUM_THREADS=1 python experiments/bench_random_budgets.py [--seed 14] [--time-limit 30] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepmad_nni.core import Program, get_family, solve  # noqa: E402
from deepmad_nni.core.evolution import evolve  # noqa: E402
from deepmad_nni.core.rho_range import rho_range  # noqa: E402
from deepmad_nni.core.slots import build_slot_tables  # noqa: E402

FAMILIES = ("resnet-bottleneck-224", "mbv2-se-224", "resnet-bottleneck-cifar", "mbv2-se-cifar")


def family_span(name: str):
    """(smallest FLOPs, largest FLOPs), (smallest params, largest params) of the family's designs."""
    slots = build_slot_tables(Program.create(get_family(name)))
    out = []
    for pick, fill in ((np.minimum, np.inf), (np.maximum, -np.inf)):
        f_prev = p_prev = None
        for sl in slots:
            depth = sl.lmin if pick is np.minimum else sl.lmax
            f, p = sl.first[2] + (depth - 1) * sl.rep[2], sl.first[3] + (depth - 1) * sl.rep[3]
            if f_prev is not None:
                f, p = f + f_prev[sl.ci], p + p_prev[sl.ci]
            tf, tp = np.full(len(sl.widths), fill), np.full(len(sl.widths), fill)
            pick.at(tf, sl.co, f)
            pick.at(tp, sl.co, p)
            f_prev, p_prev = tf, tp
        out.append((float(pick.reduce(f_prev[np.isfinite(f_prev)])), float(pick.reduce(p_prev[np.isfinite(p_prev)]))))
    (f_lo, p_lo), (f_hi, p_hi) = out
    return (f_lo, f_hi), (p_lo, p_hi)


def draw_budgets(seed: int, per_family: int):
    rng = np.random.default_rng(seed)
    budgets = []
    for name in FAMILIES:
        (f_lo, f_hi), (p_lo, p_hi) = family_span(name)
        f_range = (4 * f_lo, 4 * math.sqrt(f_lo * f_hi))
        p_range = (4 * p_lo, 4 * math.sqrt(p_lo * p_hi))
        drawn = 0
        while drawn < per_family:
            flops = float(math.exp(rng.uniform(*np.log(f_range))))
            params = float(math.exp(rng.uniform(*np.log(p_range))))
            u = rng.uniform()
            try:
                rr = rho_range(name, flops=flops, params=params)
            except ValueError:
                continue
            rho = float(math.exp(math.log(rr.low) + u * (math.log(rr.high) - math.log(rr.low))))
            budgets.append((name, round(flops, -6), round(params, -4), round(rho, 3)))
            drawn += 1
    return budgets


def _pct(a: float, b: float) -> float:
    return 100.0 * (a - b) / abs(b)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=14, help="seed of the budgets' draw")
    ap.add_argument("--per-family", type=int, default=3, help="budgets drawn per family")
    ap.add_argument("--time-limit", type=float, default=30.0, help="time limit of the second solve (s)")
    ap.add_argument("--evaluations", type=int, default=500_000, help="evolutionary baseline evaluations")
    ap.add_argument("--reference", help="JSON of an earlier run: reuse its timed-solve and evolution columns")
    ap.add_argument("--rerun-timed", action="store_true",
                    help="with --reference, solve the timed column again (reuse only the evolution's)")
    ap.add_argument("--out", help="directory for bench_random_budgets.json (optional)")
    args = ap.parse_args(argv)
    reference = {}
    if args.reference:
        for row in json.loads(Path(args.reference).read_text()):
            reference[(row["family"], row["flops"], row["params"], row["rho"])] = row
    budgets = draw_budgets(args.seed, args.per_family)
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
    below = sum(r["quick"] < r["evolution"] for r in rows)
    far = sum(r["quick"] < r["limit"] * (1 - 1e-3) for r in rows)
    print(f"quick solve below the evolution on {below} of {len(rows)} budgets; more than 0.1% below the "
          f"timed solve on {far}; median quick time {statistics.median(r['quick_s'] for r in rows):.3f} s")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "bench_random_budgets.json").write_text(json.dumps(rows, indent=2))
        print(f"wrote {Path(args.out) / 'bench_random_budgets.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
