"""Benchmark: the quick solve on budgets other than the paper presets, beside the official-style evolution.

The quick solve's plan was tuned while watching the eight paper presets; this checks what it does
elsewhere.  For each family and budget it prints the quick solve's time, objective and proven gap, the
objective of a solve with ``--time-limit`` seconds, and the best objective of the evolutionary baseline
(population 256, 2 mutated blocks per child, ``--evaluations`` candidates), with the differences.

    OMP_NUM_THREADS=1 python experiments/bench_off_preset.py [--time-limit 3] [--evaluations 500000] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepmad_nni.core import Program, get_family, solve  # noqa: E402
from deepmad_nni.core.evolution import evolve  # noqa: E402

# (family, FLOPs, params, rho_0): budgets below, between and above the presets, and CIFAR-scale ones
BUDGETS = [
    ("resnet-bottleneck-224", 1.0e9, 8e6, 0.3), ("resnet-bottleneck-224", 2.5e9, 15e6, 0.3),
    ("resnet-bottleneck-224", 5e9, 30e6, 0.3), ("resnet-bottleneck-224", 8e9, 45e6, 0.3),
    ("mbv2-se-224", 200e6, 3e6, 0.5), ("mbv2-se-224", 600e6, 8e6, 0.5),
    ("mbv2-se-224", 2e9, 15e6, 0.5), ("mbv2-se-224", 6e9, 40e6, 0.5),
    ("resnet-bottleneck-cifar", 0.3e9, 3e6, 0.3), ("resnet-bottleneck-cifar", 1e9, 10e6, 0.3),
    ("mbv2-se-cifar", 50e6, 1e6, 0.5), ("mbv2-se-cifar", 200e6, 4e6, 0.5),
]


def _pct(a: float, b: float) -> float:
    return 100.0 * (a - b) / abs(b)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-limit", type=float, default=3.0, help="time limit of the second solve (s)")
    ap.add_argument("--evaluations", type=int, default=500_000, help="evolutionary baseline evaluations")
    ap.add_argument("--out", help="directory for results.json (optional)")
    args = ap.parse_args(argv)
    print(f"{'family':24} {'GFLOPs':>6} {'M params':>8} {'rho':>4} | {'quick s':>7} {'quick':>9} {'gap %':>6} | "
          f"{'limit':>9} {'gap %':>6} | {'evolution':>9} | {'quick-evo':>9} {'limit-evo':>9}")
    rows = []
    for family, flops, params, rho in BUDGETS:
        t0 = time.perf_counter()
        quick = solve(family, flops=flops, params=params, rho=rho)
        quick_s = time.perf_counter() - t0
        limited = solve(family, flops=flops, params=params, rho=rho, time_limit=args.time_limit)
        program = Program.create(get_family(family), flops=flops, params=params, rho=rho)
        evo = evolve(program, evaluations=args.evaluations, seed=0)
        row = {"family": family, "flops": flops, "params": params, "rho": rho, "quick_s": quick_s,
               "quick": quick.objective, "quick_gap_pct": 100 * quick.relative_gap, "limit_s": args.time_limit,
               "limit": limited.objective, "limit_gap_pct": 100 * limited.relative_gap, "evolution": evo.objective}
        rows.append(row)
        print(f"{family:24} {flops / 1e9:6.2f} {params / 1e6:8.1f} {rho:4.1f} | {quick_s:7.3f} {quick.objective:9.1f} "
              f"{row['quick_gap_pct']:6.2f} | {limited.objective:9.1f} {row['limit_gap_pct']:6.2f} | "
              f"{evo.objective:9.1f} | {_pct(quick.objective, evo.objective):+8.2f}% "
              f"{_pct(limited.objective, evo.objective):+8.2f}%", flush=True)
    below = [r for r in rows if r["quick"] < r["evolution"]]
    print(f"quick solve below the evolution on {len(below)} of {len(rows)} budgets; with {args.time_limit:g} s, "
          f"on {sum(r['limit'] < r['evolution'] for r in rows)}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "bench_off_preset.json").write_text(json.dumps(rows, indent=2))
        print(f"wrote {Path(args.out) / 'bench_off_preset.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
