"""Does a latency table predict? Predicted (calibrated table) vs measured end-to-end latency of built models.

For ``--designs`` designs across a family's range (the core solver's designs at FLOPs budgets spaced
geometrically between ``--flops-range LO HI``; rho_0 the family's, no params budget, quick solve, seed 0: all
deterministic), the script

1. profiles the family's units up to HI MACs into ``--table`` (resumable; reused when already complete) and
   calibrates it on ``--calibrate`` networks of its own (seeded designs at random budgets, not the checked ones;
   :mod:`deepmad_nni.latency_calibration`);
2. measures each design's built torch module (``deepmad_nni.builder.build_model``, eval, inference mode) on the
   same device, batch and threads as the table: warm-up, then the median of ``--repeats`` timed forwards;
3. prints the median relative error |predicted - measured| / measured, Spearman's rank correlation, the
   profiling time (and the same figures for the uncalibrated plain sum of entries), and for three latency budgets (the 25/50/75 % quantiles of the measured latencies) whether
   the design ``solve(..., latency=budget)`` returns meets the budget when measured.

Targets (issue 16): mbv2-se-224 and resnet-bottleneck-224, batch 1, CPU, 1 thread: median error <= 10 %,
Spearman >= 0.9.  Run on an idle machine, e.g.::

    OMP_NUM_THREADS=1 python experiments/bench_latency.py --family mbv2-se-224 --table /tmp/mbv2-cpu.json
    OMP_NUM_THREADS=1 python experiments/bench_latency.py --family resnet-bottleneck-224 --table /tmp/r-cpu.json

Results go to ``--out`` (JSON) when given; nothing else is written but the table.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

DEFAULT_RANGES = {    # FLOPs (MACs) ranges: mobile nets, ResNet-18..50, and CIFAR-scale
    "mbv2-se-224": (100e6, 1.0e9),
    "resnet-bottleneck-224": (0.5e9, 5.0e9),
    "mbv2-se-cifar": (5e6, 200e6),
    "resnet-bottleneck-cifar": (20e6, 1.0e9),
    "nas-bench-macro": (10e6, 120e6),
}


def designs(family, lo: float, hi: float, count: int):
    """One design per FLOPs budget, ``count`` budgets geometric in [lo, hi]; duplicates dropped."""
    from deepmad_nni.core import solve
    out, seen = [], set()
    for budget in np.geomspace(lo, hi, count):
        r = solve(family, flops=float(budget), seed=0)
        if r.designs and r.architecture.canonical() not in seen:
            seen.add(r.architecture.canonical())
            out.append((float(budget), r.architecture))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", required=True, choices=sorted(DEFAULT_RANGES))
    p.add_argument("--table", required=True, help="latency-table file (profiled here when missing or partial)")
    p.add_argument("--flops-range", type=float, nargs=2, metavar=("LO", "HI"), default=None)
    p.add_argument("--designs", type=int, default=20)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=10, help="timings per unit and per model (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--calibrate", type=int, default=10,
                   help="networks measured end to end to calibrate the table (its own seeded designs; 0: none)")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)

    import torch
    from scipy.stats import spearmanr

    from deepmad_nni.core import get_family, solve
    from deepmad_nni.core.latency import predicted_latency
    from deepmad_nni.core.latency_units import arch_units
    from deepmad_nni.latency_calibration import measure_network
    from deepmad_nni.latency_profile import profile_family
    from deepmad_nni.steady_memory import keep_freed_memory

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)     # as the profile does (deepmad_nni/latency_profile.py)
    allocator = keep_freed_memory()    # as the profile does (deepmad_nni/steady_memory.py)
    family = get_family(args.family)
    lo, hi = args.flops_range or DEFAULT_RANGES[args.family]
    t0 = time.perf_counter()
    table = profile_family(family, args.table, device=args.device, batch_size=args.batch_size, threads=args.threads,
                           warmup=args.warmup, repeats=args.repeats, max_macs=hi, calibrate=args.calibrate)
    profile_s = table.settings.get("measured_s", time.perf_counter() - t0)
    picked = designs(family, lo, hi, args.designs)
    clock = table.settings["clock"]

    def measured(arch, by):
        return measure_network(arch, device=args.device, batch_size=args.batch_size, warmup=args.warmup,
                               repeats=args.repeats, clock=by)
    rows = []
    for i, (budget, arch) in enumerate(picked, 1):
        pred = predicted_latency(arch, table)
        meas, wall = measured(arch, clock), measured(arch, "wall")
        rows.append({"flops_budget": budget, "predicted_ms": pred, "measured_ms": meas, "measured_wall_ms": wall})
        print(f"design {i:2d}/{len(picked)}: FLOPs budget {budget:.4g}  predicted {pred:8.3f} ms  measured "
              f"{meas:8.3f} ms ({clock} clock; wall {wall:8.3f})  error {100 * (pred - meas) / meas:+6.1f}%",
              file=sys.stderr, flush=True)
    pred = np.array([r["predicted_ms"] for r in rows])
    meas = np.array([r["measured_ms"] for r in rows])
    wall = np.array([r["measured_wall_ms"] for r in rows])
    rel, rel_wall = np.abs(pred - meas) / meas, np.abs(pred - wall) / wall
    rho_s = float(spearmanr(pred, meas)[0]) if len(rows) > 2 else float("nan")
    checks = []
    for q in (0.25, 0.5, 0.75):
        budget = float(np.quantile(meas, q))
        r = solve(family, flops=hi, latency=budget, latency_table=table, seed=0)
        got = measured(r.architecture, clock) if r.designs else None
        got_wall = measured(r.architecture, "wall") if r.designs else None
        checks.append({"budget_ms": budget, "status": r.status, "predicted_ms": r.latency if r.designs else None,
                       "measured_ms": got, "measured_wall_ms": got_wall, "meets": got is not None and got <= budget})
    uncal = np.array([sum(table.ms(u) for u in arch_units(a)) for _, a in picked])
    rel_uncal = np.abs(uncal - meas) / meas
    summary = {"family": family.name, "settings": table.settings, "allocator": allocator, "clock": clock,
               "median_rel_error_uncalibrated": float(np.median(rel_uncal)),
               "spearman_uncalibrated": float(spearmanr(uncal, meas)[0]) if len(rows) > 2 else float("nan"),
               "median_rel_error_wall": float(np.median(rel_wall)),
               "spearman_wall": float(spearmanr(pred, wall)[0]) if len(rows) > 2 else float("nan"),
               "flops_range": [lo, hi], "designs": len(rows), "load_average": os.getloadavg()[0],
               "profile_s": profile_s, "table_entries": len(table), "median_rel_error": float(np.median(rel)),
               "max_rel_error": float(rel.max()), "spearman": rho_s, "rows": rows, "latency_budgets": checks}
    print(f"{family.name}: {len(rows)} designs, table of {len(table)} units profiled in {profile_s:.1f} s; "
          f"median relative error {100 * summary['median_rel_error']:.1f}% (max {100 * summary['max_rel_error']:.1f}%),"
          f" Spearman {rho_s:.3f} ({clock} clock); against the wall clock: median error "
          f"{100 * summary['median_rel_error_wall']:.1f}%, Spearman {summary['spearman_wall']:.3f}; uncalibrated "
          f"(plain sum of entries): median error {100 * summary['median_rel_error_uncalibrated']:.1f}%, Spearman "
          f"{summary['spearman_uncalibrated']:.3f}; load average {summary['load_average']:.2f}")
    for c in checks:
        print(f"  latency <= {c['budget_ms']:.3f} ms: {c['status']}, predicted {c['predicted_ms']}, measured "
              f"{c['measured_ms']} (wall {c['measured_wall_ms']}), meets: {c['meets']}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(summary, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
