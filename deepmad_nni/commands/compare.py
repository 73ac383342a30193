"""``deepmad-nni compare``: DeepMAD against NNI's built-in strategies (quality found, search GPU-hours).

With no arguments it runs a small embedded default: the NAS-Bench-Macro track (3 budgets, 3 seeds, N = 10
and 30) on the table packaged with deepmad-nni (or ``--benchmark-path`` / ``$DEEPMAD_NAS_BENCH_MACRO``), or,
should an installation lack that table, a minute-scale Fashion-MNIST training track; results go under
``--out`` (default ``./deepmad-compare`` in the current directory).
"""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_OUT = "deepmad-compare"
SMALL = {"nas-bench-macro": {"seeds": 3, "ns": "10,30"}, "fashion-mnist": {"seeds": 1, "ns": "2"}}
SMALL_TRAINING_STRATEGIES = "deepmad,random,evolution,tpe"


def _ints(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers, but got {text!r}.") from None
    return values


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers, but got {text!r}.") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--track", choices=("nas-bench-macro", "fashion-mnist"), default=None,
                        help="benchmark lookups (default) or real Fashion-MNIST training")
    parser.add_argument("--benchmark-path", default=None,
                        help="nas-bench-macro_cifar10.json, its .gz, or their folder (default: "
                        "$DEEPMAD_NAS_BENCH_MACRO, else the copy packaged with deepmad-nni)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT}); "
                        "finished runs in it are kept and skipped when the command is run again")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing; rewrite the CSV/markdown/PNG from the runs already in --out")
    parser.add_argument("--strategies", default=None,
                        help="comma list of deepmad, deepmad-optuna, deepmad-evolution, random, grid, evolution, "
                        "tpe, rl, mathnas (opt-in; spaces NNI's profilers count: NAS-Bench-Macro, SPACH) and, on the "
                        "training track, the one-shot darts, "
                        "gumbel-darts, random-oneshot "
                        f"(default: all but the one-shot ones; training track: {SMALL_TRAINING_STRATEGIES})")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per sampling strategy (small default: "
                        "3 on the benchmark, 1 on training)")
    parser.add_argument("--ns", default=None, help="comma list of trained-candidate counts N (small default: "
                        "10,30 on the benchmark, 2 on training)")
    parser.add_argument("--flops", default=None, help="comma list of FLOPs (MAC) budgets, e.g. 45e6,55e6,65e6 "
                        "(default: the track's)")
    parser.add_argument("--params", type=float, default=None, help="params budget applied with every FLOPs budget")
    cost = parser.add_argument_group("cost model (benchmark track)")
    cost.add_argument("--gpu-tflops", type=float, default=None,
                      help="effective training TFLOP/s (default 1.0, assumed)")
    cost.add_argument("--calibrate", action="store_true", help="time real training steps on --device (a GPU) "
                      "and use the fitted constants instead of the assumed ones")
    cost.add_argument("--overhead-s", type=float, default=None,
                      help="seconds of overhead per epoch (default 5, assumed)")
    train = parser.add_argument_group("training track")
    train.add_argument("--space", default=None, help="nas-bench-macro (default) or a CIFAR-scale package space: "
                       "resnet-basic-cifar-small, resnet-bottleneck-cifar-small, mbconv-se-cifar-small, "
                       "resnet-basic-cifar, resnet-bottleneck-lite-cifar, mbconv-cifar, mbconv-se-cifar, or SPACH "
                       "(counted by NNI's profilers at the data's input): spach-cifar (conv/attention/token-MLP "
                       "mixers; DeepMAD's strategies skipped, its reader refuses them) or spach-cifar-conv (conv "
                       "mixers only; DeepMAD through its reader)")
    train.add_argument("--train-size", type=int, default=None, help="training images (default 2000)")
    train.add_argument("--epochs", type=int, default=None, help="epochs per candidate (default 3)")
    train.add_argument("--resolution", type=int, default=None, help="image side (default 14; 56 on SPACH, "
                       "which needs a multiple of 8)")
    train.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def run(args) -> int:
    from ..compare.harness import ignore_not_a_module_warning
    with ignore_not_a_module_warning():  # NNI's harmless import-time warnings, one per torch class
        return _run(args)


def _run(args) -> int:
    from ..benchmarks.nas_bench_macro import default_path
    from ..compare.cost import CostModel
    from ..compare.harness import Budget
    from ..compare.runner import compare

    track = args.track or ("nas-bench-macro" if (args.benchmark_path or default_path()) else "fashion-mnist")
    small = SMALL[track]
    strategies = args.strategies or (SMALL_TRAINING_STRATEGIES if track == "fashion-mnist" else None)
    budgets = None
    if args.flops:
        budgets = [Budget(f"{f / 1e6:g}M", flops=f, params=args.params) for f in _floats(args.flops, "--flops")]
    elif args.params:
        budgets = [Budget(f"{args.params / 1e6:g}M params", params=args.params)]
    cost = {}
    if args.gpu_tflops is not None:
        cost["gpu_flops"] = args.gpu_tflops * 1e12
    if args.overhead_s is not None:
        cost["overhead_s"] = args.overhead_s
    if cost:
        cost["source"] = "given on the command line"
    if args.calibrate:
        from ..compare.calibrate import calibrate
        model = calibrate(device=args.device)
        print(f"Calibrated: {model}")
        cost = model.to_dict()
    training = {k: v for k, v in (("train_size", args.train_size), ("epochs", args.epochs),
                                  ("resolution", args.resolution), ("device", args.device), ("space", args.space))
                if v is not None}
    result = compare(track=track, out_dir=args.out, benchmark_path=args.benchmark_path,
                     strategies=strategies.split(",") if strategies else None, budgets=budgets,
                     seeds=args.seeds if args.seeds is not None else small["seeds"],
                     ns=_ints(args.ns or small["ns"], "--ns"), cost_model=CostModel(**cost), training=training,
                     report_only=args.report_only)
    print(Path(result["markdown"]).read_text())
    print(f"Wrote {result['csv']}, {result['markdown']}, {result['plot']} and runs.jsonl in {Path(args.out).resolve()}")
    return 0
