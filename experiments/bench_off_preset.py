"""Benchmark: the quick solve on budgets other than the paper presets, beside the official-style evolution.

The quick solve's plan was tuned while watching the eight paper presets; this checks what it does
elsewhere.  The table and its options are experiments/budget_table.py's: per budget the quick solve, a
solve with ``--time-limit`` seconds and the 500,000-candidate evolution (``--reference`` reuses the last two
from an earlier run's JSON).

    OMP_NUM_THREADS=1 python experiments/bench_off_preset.py [--time-limit 30] [--reference FILE] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from budget_table import add_arguments, run  # noqa: E402

# (family, FLOPs, params, rho_0): budgets below, between and above the presets, and CIFAR-scale ones
BUDGETS = [
    ("resnet-bottleneck-224", 1.0e9, 8e6, 0.3), ("resnet-bottleneck-224", 2.5e9, 15e6, 0.3),
    ("resnet-bottleneck-224", 5e9, 30e6, 0.3), ("resnet-bottleneck-224", 8e9, 45e6, 0.3),
    ("mbv2-se-224", 200e6, 3e6, 0.5), ("mbv2-se-224", 600e6, 8e6, 0.5),
    ("mbv2-se-224", 2e9, 15e6, 0.5), ("mbv2-se-224", 6e9, 40e6, 0.5),
    ("resnet-bottleneck-cifar", 0.3e9, 3e6, 0.3), ("resnet-bottleneck-cifar", 1e9, 10e6, 0.3),
    ("mbv2-se-cifar", 50e6, 1e6, 0.5), ("mbv2-se-cifar", 200e6, 4e6, 0.5),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap, time_limit=30.0)
    run(BUDGETS, ap.parse_args(argv), "bench_off_preset")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
