"""Benchmark: the quick solve on budgets drawn at random, beside a timed solve and the official-style evolution.

The budgets are not chosen by anyone watching the solver: for each family, ``--per-family`` budgets are
drawn with ``numpy.random.default_rng(--seed)`` (default seed 14, the issue's number):

* FLOPs and params, each log-uniformly and independently between 4 x the family's smallest design and 4 x
  the geometric mean of its smallest and largest designs (the largest design of a family is far beyond any
  practical budget: 500 GFLOPs for the ResNet families);
* rho_0 log-uniformly within the range where it binds for those budgets (core/rho_range.py: from the
  smallest rho of any design within them to the rho of the optimum without the constraint).

Draws that no design meets are drawn again.  The range of rho_0 comes from quick solves, so the draw changes
when the quick solve does: to compare two versions of the solver on the same budgets, give the first run's
JSON as ``--reference`` (its budgets are used, in its order, and ``--seed`` is ignored).  The table and its
other options (``--time-limit``, ``--rerun-timed``, ``--out``) are experiments/budget_table.py's.

    OMP_NUM_THREADS=1 python experiments/bench_random_budgets.py [--seed 14] [--time-limit 30] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from budget_table import add_arguments, run  # noqa: E402
from deepmad_nni.core import Program, get_family  # noqa: E402
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=14, help="seed of the budgets' draw")
    ap.add_argument("--per-family", type=int, default=3, help="budgets drawn per family")
    add_arguments(ap, time_limit=30.0)
    args = ap.parse_args(argv)
    if args.reference:   # the reference's budgets: the draw of rho_0 reads core/rho_range.py's quick solves
        budgets = [(r["family"], r["flops"], r["params"], r["rho"]) for r in json.loads(Path(args.reference).read_text())]
    else:
        budgets = draw_budgets(args.seed, args.per_family)
    run(budgets, args, "bench_random_budgets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
