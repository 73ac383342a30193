"""``deepmad-nni tune``: an Optuna study over DeepMAD's rho_0, beta and alpha (see docs/optuna.md)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.score import CONVENTIONS
from .budget_args import add_budget_arguments, budgets_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--family", default=None, help="search family (default nas-bench-macro, unless --space)")
    p.add_argument("--space", default=None, metavar="MODULE:ATTRIBUTE",
                   help="design over an NNI model space instead of a family: a ModelSpace instance or a "
                        "zero-argument callable returning one (e.g. search_spaces.nas_bench_macro:NasBenchMacroSpace); "
                        "the evaluator gets the frozen NNI model (give --evaluator module:attribute)")
    p.add_argument("--flops", type=float, default=None, help="FLOPs budget in MACs, e.g. 60e6")
    p.add_argument("--params", type=float, default=None, help="parameter budget, e.g. 1.5e6")
    p.add_argument("--evaluator", default=None,
                   help="nas-bench-macro (default with a family) | training | module:attribute (a function "
                        "arch -> accuracy, an nni.nas.evaluator.Evaluator or an Evaluator; with --space the "
                        "function gets the frozen NNI model: model -> accuracy)")
    p.add_argument("--benchmark-path", default=None,
                   help="nas-bench-macro evaluator: nas-bench-macro_cifar10.json, its .gz, or their folder "
                        "(default: $DEEPMAD_NAS_BENCH_MACRO, else the copy packaged with deepmad-nni)")
    p.add_argument("--dataset", default="fashion-mnist", help="training evaluator: fashion-mnist | digits | cifar10")
    p.add_argument("--data-dir", default=None, help="training evaluator: folder of the dataset files")
    p.add_argument("--epochs", type=int, default=5, help="training evaluator: epochs per design (default 5)")
    p.add_argument("--width-multiplier", type=float, default=0.25,
                   help="training evaluator: width scale of the trained proxy (default 0.25)")
    p.add_argument("--train-size", type=int, default=10000, help="training evaluator: training images (default 10000)")
    p.add_argument("--device", default=None, help="training evaluator: cpu | cuda (default: cuda if available)")
    p.add_argument("--storage", default=None,
                   help="Optuna RDB URL (sqlite:///study.db, postgresql://user@host/db); default <out>/study.db")
    p.add_argument("--study-name", default=None, help="study to create or resume (default derived from the problem)")
    p.add_argument("--n-trials", type=int, default=30, help="trials this run adds (default 30)")
    p.add_argument("--max-evaluations", type=int, default=None,
                   help="stop once this many distinct designs were evaluated (cache hits are free)")
    p.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--out", required=True, help="folder for the default SQLite storage, plots and summary.json")
    p.add_argument("--multi-objective", action="store_true", help="maximise accuracy and minimise FLOPs (Pareto)")
    p.add_argument("--sampler", default="tpe", choices=("tpe", "random", "nsga2"))
    p.add_argument("--pruner", default="median", choices=("median", "hyperband", "none"))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--rho", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"),
                   help="rho_0 range, log-uniform (default: computed, where rho <= rho_0 binds for the budgets)")
    p.add_argument("--beta", nargs=2, type=float, default=(0.0, 20.0), metavar=("LOW", "HIGH"),
                   help="beta range (default 0 20)")
    p.add_argument("--alpha-last", nargs=2, type=float, default=(1.0, 32.0), metavar=("LOW", "HIGH"),
                   help="last-stage entropy weight range, log-uniform (default 1 32)")
    p.add_argument("--alpha-others", nargs=2, type=float, default=(0.5, 2.0), metavar=("LOW", "HIGH"),
                   help="every other stage weight's range, log-uniform (default 0.5 2; equal values fix them)")
    p.add_argument("--convention", default="official", choices=list(CONVENTIONS),
                   help="DeepMAD's scoring convention (default official; see deepmad-nni design --help)")
    p.add_argument("--time-limit", type=float, default=10.0, help="solver time limit per trial, seconds")
    p.add_argument("--heartbeat", type=int, default=10,
                   help="RDB storages: seconds between heartbeats; a trial silent for 3 beats (a killed worker) "
                        "is marked FAIL (default 10)")
    p.add_argument("--no-defaults-first", action="store_true",
                   help="do not start a new study with the paper's hyperparameters")
    add_budget_arguments(p)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")


def run(args) -> int:
    from ..optuna_loop import SearchRanges, tune
    from ..optuna_loop._tune import load_space
    if args.family is not None and args.space is not None:
        raise ValueError(f"--family and --space cannot both be given (a study designs over one of them), but got "
                         f"--family {args.family} and --space {args.space}.")
    space = None
    if args.space is not None:
        from ..compare.harness import ignore_not_a_module_warning
        with ignore_not_a_module_warning():
            space = load_space(args.space, argument="--space")
    options = None
    if args.evaluator == "training":
        options = {"dataset": args.dataset, "epochs": args.epochs, "width_multiplier": args.width_multiplier,
                   "train_size": args.train_size, "data_dir": args.data_dir, "device": args.device}
    budgets = budgets_of(args)
    ranges = SearchRanges(rho=None if args.rho is None else tuple(args.rho), beta=tuple(args.beta),
                          alpha_last=tuple(args.alpha_last), alpha_others=tuple(args.alpha_others))
    result = tune(args.family, space=space, flops=args.flops, params=args.params, evaluator=args.evaluator,
                  benchmark_path=args.benchmark_path, evaluator_options=options, ranges=ranges,
                  n_trials=args.n_trials, timeout=args.timeout, max_evaluations=args.max_evaluations,
                  storage=args.storage, study_name=args.study_name,
                  out_dir=args.out, multi_objective=args.multi_objective, sampler=args.sampler, pruner=args.pruner,
                  seed=args.seed, convention=args.convention, time_limit=args.time_limit,
                  start_from_defaults=not args.no_defaults_first,
                  heartbeat_interval=args.heartbeat or None, plots=not args.no_plots, progress=not args.quiet,
                  **budgets)
    summary = result.summary()
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    best = summary["best"] and {k: v for k, v in summary["best"].items() if k != "design"}
    print(json.dumps({"study_name": summary["study_name"], "trials": summary["trials"], "best": best}, default=str))
    for name, path in result.plots.items():
        print(f"{name}: {path}")
    print(f"dashboard: optuna-dashboard {result.storage}")
    return 0
