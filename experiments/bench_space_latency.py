"""Does a latency table predict on a read space? Predicted vs measured latency of frozen MobileNetV3Space samples.

For ``--designs`` networks across the FLOPs range of NNI's ``MobileNetV3Space`` (read by the reader at
``--resolution``; the range is the space's smallest and largest FLOPs, by variable elimination), the script

1. profiles every unit of the space (:mod:`deepmad_nni.nas.space_units`) into ``--table`` and calibrates it on
   ``--calibrate`` random networks of the space (:mod:`deepmad_nni.nas.space_calibration`; resumable, reused when
   complete);
2. takes DeepMAD's designs (``ReaderRoute.solve``: quick solve, seed 0, rho_0 ``--rho``, no params budget) at
   FLOPs budgets geometric across the range, then random samples (``--seed``) when designs repeat;
3. measures each network frozen by NNI (``space.freeze(sample)``, eval, ``torch.inference_mode``, the table's
   threads, denormals flushed, freed memory kept as the table was timed): ``--warmup`` forwards, then the median
   of ``--repeats`` timed forwards (:func:`~deepmad_nni.nas.space_calibration.measure_frozen`);
4. prints the median relative error |predicted - measured| / measured, the median signed error, Spearman's rank
   correlation, the same for the uncalibrated sum of entries, the profiling time and the load average; with
   ``--budget`` also what the latency budget returns at the median measured latency (status, predicted, measured).

Targets (issue 16): median error <= 10 %, Spearman >= 0.9 (batch 1, CPU, 1 thread).  Run on an idle machine::

    OMP_NUM_THREADS=1 python experiments/bench_space_latency.py --table /tmp/mbv3-space-cpu.json --out /tmp/b.json

``--width-multipliers`` / ``--resolution`` give a smaller variant of the space (a shorter profile).  Results go
to ``--out`` (JSON) when given; nothing else is written but the table.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import warnings

import numpy as np


def flops_range(desc) -> tuple[float, float]:
    """(smallest, largest) FLOPs of any sample of ``desc`` (exact: variable elimination over its FLOPs factors)."""
    from deepmad_nni.nas.space_compiled import compiled
    from deepmad_nni.nas.space_program import program_weights
    alpha, beta = program_weights(desc.num_stages, None, 10.0, "official")
    comp = compiled(desc, alpha, beta, "official")
    return comp.extreme("F", -1.0)[0], comp.extreme("F", 1.0)[0]


def pick(route, lo, hi, count, rho, seed, log):
    """(source, FLOPs budget, full sample): DeepMAD designs at ``count`` budgets geometric in [lo, hi], distinct
    networks only, then random samples up to ``count``."""
    out, seen = [], set()
    for budget in np.geomspace(lo, hi, count):
        t0 = time.perf_counter()
        try:
            result, records = route.solve(flops=float(budget), rho=rho, top_k=1)
        except ValueError as err:
            log(f"  FLOPs {budget:.4g}: {err}")
            continue
        if records and route.network(records[0].sample) not in seen:
            seen.add(route.network(records[0].sample))
            out.append(("deepmad", float(budget), records[0].sample))
        log(f"  FLOPs {budget:.4g}: {result.status} in {time.perf_counter() - t0:.1f} s, {len(out)} distinct")
    rng = random.Random(seed)
    while len(out) < count:
        sample = route.full({k: rng.choice(m.values) for k, m in route.mutables.items()})
        if route.network(sample) not in seen:
            seen.add(route.network(sample))
            out.append(("random", None, sample))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", required=True, help="latency-table file (profiled here when missing or partial)")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--width-multipliers", type=float, nargs="+", default=None,
                   help="MobileNetV3Space's width_multipliers (default: the space's own)")
    p.add_argument("--designs", type=int, default=20)
    p.add_argument("--rho", type=float, default=0.5, help="rho_0 of DeepMAD's designs (default: the paper's 0.5)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=10, help="timings per unit and per network (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="random samples drawn when designs repeat")
    p.add_argument("--calibrate", type=int, default=10, help="networks the table is calibrated on (0: none)")
    p.add_argument("--budget", action="store_true", help="also solve with a latency budget (median measured)")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)

    import torch
    from nni.nas.hub.pytorch import MobileNetV3Space
    from scipy.stats import spearmanr

    from deepmad_nni.core.latency import LatencyTable
    from deepmad_nni.latency_profile import profile_space
    from deepmad_nni.nas.route import ReaderRoute
    from deepmad_nni.nas.space_calibration import measure_frozen

    def log(line):
        print(line, file=sys.stderr, flush=True)

    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)     # as the profile does (deepmad_nni/latency_profile.py)
    kwargs = {} if args.width_multipliers is None else {"width_multipliers": tuple(args.width_multipliers)}
    space = MobileNetV3Space(**kwargs)
    size = (1, 3, args.resolution, args.resolution)
    t0 = time.perf_counter()
    route = ReaderRoute(space, size)
    units = route.units()
    log(f"read {units.space_id}: {len(units.units())} units in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    table = profile_space(units, args.table, space=space, threads=args.threads, warmup=args.warmup,
                          repeats=args.repeats, calibrate=args.calibrate)
    profile_s, total_s = table.settings.get("measured_s", float("nan")), time.perf_counter() - t0
    plain = LatencyTable({k: v for k, v in table.settings.items() if k != "calibration"}, table.entries)
    lo, hi = flops_range(route.desc)
    log(f"FLOPs range of the space: {lo:.4g} .. {hi:.4g} MACs")
    picked = pick(route, lo * 1.05, hi, args.designs, args.rho, args.seed, log)
    rows = []
    for i, (source, budget, sample) in enumerate(picked, 1):
        model = space.freeze(sample).eval()
        pred = route.predicted_latency(sample, table)
        meas = measure_frozen(model, size, warmup=args.warmup, repeats=args.repeats, clock=table.settings["clock"])
        s = route.score(sample)
        rows.append({"source": source, "flops_budget": budget, "flops": s.flops, "predicted_ms": pred,
                     "entries_ms": units.predicted_latency(sample, plain), "measured_ms": meas, "sample": sample})
        log(f"network {i:2d}/{len(picked)} ({source}): FLOPs {s.flops:.4g}  predicted {pred:8.3f} ms  measured "
            f"{meas:8.3f} ms  error {100 * (pred - meas) / meas:+6.1f}%")
    pred = np.array([r["predicted_ms"] for r in rows])
    meas = np.array([r["measured_ms"] for r in rows])
    rel = (pred - meas) / meas
    rho_s = float(spearmanr(pred, meas)[0]) if len(rows) > 2 else float("nan")
    entries = np.array([r["entries_ms"] for r in rows])
    rel_entries = (entries - meas) / meas
    check = None
    if args.budget:
        budget = float(np.median(meas))
        t1 = time.perf_counter()
        result, records = route.solve(rho=args.rho, top_k=1, budgets={"latency": budget, "latency_table": table})
        got = measure_frozen(space.freeze(records[0].sample), size, warmup=args.warmup, repeats=args.repeats,
                             clock=table.settings["clock"]) \
            if records else None
        check = {"budget_ms": budget, "status": result.status, "message": result.message,
                 "predicted_ms": records[0].device["latency_ms"] if records else None, "measured_ms": got,
                 "solve_s": time.perf_counter() - t1, "objective": result.objective}
    load = os.getloadavg()
    summary = {"space": units.space_id, "settings": table.settings, "flops_range": [lo, hi], "networks": len(rows),
               "deepmad_designs": sum(r["source"] == "deepmad" for r in rows), "profile_s": profile_s,
               "profile_and_calibration_s": total_s, "calibration": table.settings.get("calibration"),
               "entries_only": {"median_rel_error": float(np.median(np.abs(rel_entries))),
                                "median_signed_error": float(np.median(rel_entries)),
                                "spearman": float(spearmanr(entries, meas)[0]) if len(rows) > 2 else float("nan")},
               "table_entries": len(table), "median_rel_error": float(np.median(np.abs(rel))),
               "max_rel_error": float(np.abs(rel).max()), "median_signed_error": float(np.median(rel)),
               "spearman": rho_s, "load_average": load, "latency_budget": check, "rows": rows}
    print(f"{units.space_id}: {len(rows)} networks ({summary['deepmad_designs']} DeepMAD designs), table of "
          f"{len(table)} units profiled in {profile_s:.1f} s; median relative error "
          f"{100 * summary['median_rel_error']:.1f}% (max {100 * summary['max_rel_error']:.1f}%, median signed "
          f"{100 * summary['median_signed_error']:+.1f}%), Spearman {rho_s:.3f}; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    e = summary["entries_only"]
    print(f"  uncalibrated sum of entries: median relative error {100 * e['median_rel_error']:.1f}% (median signed "
          f"{100 * e['median_signed_error']:+.1f}%), Spearman {e['spearman']:.3f}; profile + calibration "
          f"{total_s:.1f} s")
    c = table.settings.get("calibration")
    if c:
        print(f"  calibration on {c['networks']} random networks: unit_ms = {c['scale']:.3g} x entry + "
              f"{c['ms_per_mb']:.3g} ms/MB + {c['ms_per_unit']:.3g} ms, fit median error "
              f"{100 * c['fit_median_rel_error']:.1f}%, margin {100 * c['margin']:.1f}%")
    if check is not None:
        print(f"  latency <= {check['budget_ms']:.3f} ms: {check['status']} in {check['solve_s']:.1f} s, predicted "
              f"{check['predicted_ms']}, measured {check['measured_ms']}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(summary, fh, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
