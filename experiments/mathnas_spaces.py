"""MathNAS on NNI's DARTS cell space (CIFAR scale) and on the SPACH space, with a real short-training evaluator.

For each space: build it at 3 x 32 x 32, pick a FLOPs budget (the median of NNI ``FlopsProfiler`` counts of 20
seeded random samples, or ``--flops``), run ``MathNAS(flops=...)`` in a ``NasExperiment`` on the sequential
engine with ``max_trial_number`` = the estimate's minimum + ``--ilp-designs``, each evaluation a short SGD
training on Fashion-MNIST (28 x 28 grey, zero-padded to 32 x 32 and repeated to 3 channels) reporting the
validation accuracy with ``nni.report_final_result``.  Writes ``results.json`` and ``results.md`` under
``--out`` (NNI's working directory and HOME too, so nothing goes to ``~/nni-experiments``)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/mathnas_spaces.py --out /tmp/mathnas_spaces --space both

Training per evaluation: ``deepmad_nni.training.train_and_evaluate`` (SGD, cosine lr), weights re-initialised with
``--seed`` before it, BatchNorm ``momentum=None`` (running statistics = the mean over all batches: after ~20
steps the default momentum 0.1 leaves the eval-mode statistics near their initial values and DARTS networks
scored at chance).

NNI 3.0's shape inference has no formula for ``aten.stack`` / ``aten.sum.dim_IntList`` (the DARTS ``Cell``
merges a node's two ops with ``torch.sum(torch.stack(...), 0)``) nor for ``nn.ConstantPad2d`` (its
``FactorizedReduce``): ``FlopsProfiler`` fails on the DARTS space and on its frozen networks.  For the DARTS
run this script first records that failure, then registers the package's formulas for them
(:func:`deepmad_nni.nas.nni_shapes.register_missing`, which ``MathNAS`` also calls).  FLOPs are MACs: ``count_normalization=False,
count_activation=False, count_bias=False``, as MathNAS counts them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

SPACES = ("darts", "spach")
# per-space defaults: (train images, validation images); DARTS needs ~137 evaluations, SPACH ~13
DEFAULT_SIZES = {"darts": (640, 400), "spach": (1280, 500)}
COUNTING = dict(count_normalization=False, count_activation=False, count_bias=False)
INPUT_SIZE = (1, 3, 32, 32)


# -- data: Fashion-MNIST as 3 x 32 x 32 ------------------------------------------------------------------
_DATA: dict = {}


def fashion_mnist_32x3(train_size: int, val_size: int, seed: int):
    """Fashion-MNIST through :func:`deepmad_nni.data.prepare`: raw images zero-padded 28 -> 32, normalised with
    the training statistics, the grey channel repeated 3 times; ``train_size`` + ``val_size`` images drawn
    from the training split with ``seed`` (validation carved from them); no test images."""
    key = (train_size, val_size, seed)
    if key not in _DATA:
        from deepmad_nni.data import ImageData, prepare, read_fashion_mnist
        x_train, y_train, x_test, y_test = read_fashion_mnist()
        pad = ((0, 0), (0, 0), (2, 2), (2, 2))
        d = prepare("fashion-mnist-32x3", np.pad(x_train, pad), y_train, np.pad(x_test, pad), y_test,
                    num_classes=10, train_size=train_size + val_size, test_size=1,
                    val_fraction=val_size / (train_size + val_size), seed=seed)
        rgb = {k: np.ascontiguousarray(np.repeat(getattr(d, k), 3, axis=1)) for k in ("x_train", "x_val")}
        # no test split: train_and_evaluate would spend an extra pass on it; selection uses validation only
        empty = np.zeros((0, 3, 32, 32), dtype=np.float32)
        _DATA[key] = ImageData(d.name, rgb["x_train"], d.y_train, rgb["x_val"], d.y_val, empty,
                               np.zeros(0, dtype=np.int64), 10)
    return _DATA[key]


_PROGRESS = {"space": "", "count": 0, "planned": 0, "estimate": 0, "log": []}


def train_evaluate(model, *, train_size: int, val_size: int, epochs: int, seed: int, batch_size: int, lr: float):
    """NNI FunctionalEvaluator body: seeded re-initialisation, short SGD training, validation accuracy reported."""
    import nni
    import torch

    from deepmad_nni.training import seed_everything, train_and_evaluate
    data = fashion_mnist_32x3(train_size, val_size, seed)
    seed_everything(seed)
    for m in model.modules():                 # the same initial weights whatever was frozen before
        if hasattr(m, "reset_parameters") and m is not model:
            m.reset_parameters()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None                 # running stats = mean over the few batches seen (see module doc)
    t0 = time.perf_counter()
    result = train_and_evaluate(model, data, epochs=epochs, batch_size=batch_size, lr=lr, device="cpu", seed=seed)
    wall = time.perf_counter() - t0
    p = _PROGRESS
    p["count"] += 1
    phase = "estimate" if p["count"] <= p["estimate"] else "search"
    p["log"].append({"index": p["count"], "phase": phase, "accuracy": result["accuracy"], "train_s": wall,
                     "end": time.perf_counter()})
    print(f"[{p['space']}] eval {p['count']:3d}/{p['planned']} ({phase}) val acc {result['accuracy']:.4f} "
          f"train+eval {wall:5.1f}s", flush=True)
    nni.report_final_result(result["accuracy"])


# -- NNI's profiler on the DARTS cell space ---------------------------------------------------------------
def profilers(module):
    import torch
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler

    from deepmad_nni.nas.nni_shapes import quiet_shape_inference
    x = torch.zeros(*INPUT_SIZE)
    with quiet_shape_inference():
        return FlopsProfiler(module, x, **COUNTING), NumParamsProfiler(module, x)


def frozen_costs(space, sample) -> dict:
    """NNI's profilers on the frozen network (no mutables left: the expressions are numbers)."""
    model = space.freeze(sample)
    flops, params = profilers(model)
    return {"flops": float(flops.expression), "params": float(params.expression),
            "numel": int(sum(p.numel() for p in model.parameters()))}


def build_space(name: str, darts_width: int, darts_cells: int):
    if name == "darts":
        from nni.nas.hub.pytorch import DARTS
        return DARTS(width=darts_width, num_cells=darts_cells, dataset="cifar")
    from search_spaces.spach import spach_space
    return spach_space("spach-cifar")


def random_samples(space, n: int, seed: int) -> list:
    rs = np.random.RandomState(seed)
    simplified = space.simplify()
    return [{k: m.random(random_state=rs) for k, m in simplified.items()} for _ in range(n)]


# -- one space --------------------------------------------------------------------------------------------
def run_space(name: str, args, out: Path) -> dict:
    import nni
    import torch
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    from deepmad_nni import MathNAS
    from deepmad_nni.core.block_estimate import free_parameters
    from deepmad_nni.nas.mathnas import read_blocks
    from deepmad_nni.nas.nni_shapes import quiet_shape_inference, register_missing

    t_start = time.perf_counter()
    train_size = args.train_size or DEFAULT_SIZES[name][0]
    val_size = args.val_size or DEFAULT_SIZES[name][1]
    rec: dict = {"space": name, "train_size": train_size, "val_size": val_size, "epochs": args.epochs,
                 "seed": args.seed, "estimate": args.estimate}
    torch.manual_seed(args.seed)
    space = build_space(name, args.darts_width, args.darts_cells)
    rec["space_config"] = (f"nni.nas.hub.pytorch.DARTS(width={args.darts_width}, num_cells={args.darts_cells}, "
                           f"dataset='cifar')" if name == "darts" else 'spach_space("spach-cifar")')
    blocks, bspace = read_blocks(space)
    minimum = free_parameters(bspace, [np.ones(n, dtype=bool) for n in bspace.n_choices])
    rec["labels"], rec["blocks"], rec["estimate_minimum_unpruned"] = len(space.simplify()), len(blocks), minimum
    print(f"[{name}] {rec['space_config']}: {rec['labels']} labels, {len(blocks)} blocks; MathNAS's "
          f"{args.estimate!r} estimate needs at least {minimum} evaluations (1 + sum of (choices - 1), less one per "
          f"n_chosen group; budget pruning can lower it)", flush=True)

    if name == "darts":
        t = time.perf_counter()
        try:
            profilers(space)
            rec["profiler_without_shim"] = "ok"
        except Exception as e:          # noqa: BLE001 - the failure is the finding; record it
            rec["profiler_without_shim"] = f"{type(e).__name__}: {e}"
        rec["profiler_without_shim_s"] = time.perf_counter() - t
        print(f"[{name}] NNI FlopsProfiler on the space without shape shim: {rec['profiler_without_shim'][:300]}",
              flush=True)
        if rec["profiler_without_shim"] != "ok":
            register_missing()
            rec["shim"] = ("aten.stack.default, aten.sum.dim_IntList, nn.ConstantPad2d shape formulas "
                           "(deepmad_nni.nas.nni_shapes.register_missing)")

    t = time.perf_counter()
    flops_p, params_p = profilers(space)
    rec["space_profilers_s"] = time.perf_counter() - t
    samples = random_samples(space, 20, args.seed)
    counts = [float(flops_p.profile(s)) for s in samples]
    rec["random_flops"] = {"min": min(counts), "median": statistics.median(counts), "max": max(counts)}
    budget = args.flops if args.flops is not None else statistics.median(counts)
    rec["flops_budget"] = budget
    print(f"[{name}] FLOPs (MACs) of 20 seeded random samples: {min(counts)/1e6:.3f}M-{max(counts)/1e6:.3f}M, "
          f"median {statistics.median(counts)/1e6:.3f}M; budget {budget/1e6:.3f}M", flush=True)

    n_trials = minimum + args.ilp_designs
    _PROGRESS.update(space=name, count=0, planned=n_trials, estimate=minimum, log=[])
    evaluator = FunctionalEvaluator(train_evaluate, train_size=train_size, val_size=val_size, epochs=args.epochs,
                                    seed=args.seed, batch_size=args.batch_size, lr=args.lr)
    fashion_mnist_32x3(train_size, val_size, args.seed)           # load once, outside the timings
    strategy = MathNAS(flops=budget, input_size=INPUT_SIZE, estimate=args.estimate, seed=args.seed)
    config = NasExperimentConfig("sequential", "simplified", "local")
    config.experiment_working_directory = str(out / "nni")
    config.max_trial_number = n_trials
    exp = NasExperiment(space, evaluator, strategy, config)
    t_exp = time.perf_counter()
    error = None
    try:
        with quiet_shape_inference():
            exp.run()
        top = exp.export_top_models(top_k=1, formatter="dict")
    except Exception as e:          # noqa: BLE001 - reported, the other space still runs
        error, top = f"{type(e).__name__}: {e}", []
    finally:
        exp.stop()
    t_end = time.perf_counter()
    if error:
        rec["error"] = error
        print(f"[{name}] MathNAS failed: {error}", flush=True)
        rec["total_s"] = time.perf_counter() - t_start
        return rec

    log = _PROGRESS["log"]
    history = strategy.history
    estimate = [e for e in history if e.phase == "estimate"]
    search = [e for e in history if e.phase == "search"]
    n_est = len(estimate)
    first_eval_start = log[0]["end"] - log[0]["train_s"] if log else t_end
    rec.update({
        "mathnas": repr(strategy), "max_trial_number": n_trials, "estimate_minimum": strategy.minimum,
        "evaluations": len(history), "estimate_evaluations": n_est, "search_evaluations": len(search),
        "prepare_s": first_eval_start - t_exp,
        "estimate_s": (log[n_est - 1]["end"] - first_eval_start) if n_est else 0.0,
        "search_s": t_end - (log[n_est - 1]["end"] if n_est else first_eval_start),
        "experiment_s": t_end - t_exp, "ilp_s": strategy.ilp_seconds, "ilp_calls": strategy.ilp_calls,
        "cuts": strategy.cuts, "mean_train_s": float(np.mean([r["train_s"] for r in log])) if log else None,
        "best_estimate_accuracy": max((e.metric for e in estimate if e.metric is not None), default=None),
        "nni_top_model": top[0] if top else None,
    })
    designs = []
    for e in search:
        c = frozen_costs(space, e.sample)
        designs.append({"sample": e.sample, "accuracy": e.metric, "predicted": e.predicted,
                        "space_flops": float(flops_p.profile(e.sample)), "space_params": float(params_p.profile(e.sample)),
                        "frozen_flops": c["flops"], "frozen_params": c["params"], "numel": c["numel"],
                        "within_budget": c["flops"] <= budget})
    rec["search_designs"] = designs
    rec["final_design"] = designs[0] if designs else None     # the ILP's optimum: MathNAS's answer
    rec["best_search_accuracy"] = max((d["accuracy"] for d in designs if d["accuracy"] is not None), default=None)
    base = estimate[0].sample if estimate else None
    if base is not None:
        rec["base"] = {"sample": base, "accuracy": estimate[0].metric, **frozen_costs(space, base)}
    rec["total_s"] = time.perf_counter() - t_start
    return rec


# -- report -----------------------------------------------------------------------------------------------
def _m(x):
    return "-" if x is None else f"{x / 1e6:.4f}M"


def markdown(records: list, command: str) -> str:
    lines = ["# MathNAS on DARTS and SPACH (experiments/mathnas_spaces.py)", "", f"Command: `{command}`", "",
             "| space | budget (MACs) | estimate evals (min) | estimate s | ILP s (calls) | search evals | "
             "design MACs / params (frozen, NNI) | design val acc | best estimate acc | best search acc | total s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['space']} | {_m(r.get('flops_budget'))} | failed: {r['error'][:200]} |"
                         + " |" * 8)
            continue
        d = r["final_design"] or {}
        lines.append(f"| {r['space']} | {_m(r['flops_budget'])} | {r['estimate_evaluations']} ({r['estimate_minimum']}) | "
                     f"{r['estimate_s']:.0f} | {r['ilp_s']:.3f} ({r['ilp_calls']}) | {r['search_evaluations']} | "
                     f"{_m(d.get('frozen_flops'))} / {d.get('frozen_params', 0):.0f} | {d.get('accuracy', float('nan')):.4f} | "
                     f"{r['best_estimate_accuracy']:.4f} | {r['best_search_accuracy']:.4f} | {r['total_s']:.0f} |")
    for r in records:
        lines += ["", f"## {r['space']}: {r['space_config']}", ""]
        for k in ("train_size", "val_size", "epochs", "seed", "labels", "blocks", "estimate_minimum_unpruned",
                  "profiler_without_shim", "shim", "space_profilers_s", "random_flops", "mathnas", "max_trial_number",
                  "prepare_s", "estimate_s", "search_s", "experiment_s", "mean_train_s", "cuts", "error"):
            if k in r:
                lines.append(f"- {k}: {r[k] if not isinstance(r[k], float) else round(r[k], 3)}")
        for i, d in enumerate(r.get("search_designs") or []):
            lines.append(f"- ILP design {i + 1}: val acc {d['accuracy']}, predicted {d['predicted']:.4f}, MACs frozen "
                         f"{d['frozen_flops']:.0f} / space {d['space_flops']:.0f} (budget {r['flops_budget']:.0f}), "
                         f"params frozen {d['frozen_params']:.0f} / space {d['space_params']:.0f}: `{d['sample']}`")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="folder for results.json, results.md and NNI's files")
    ap.add_argument("--space", choices=SPACES + ("both",), default="both")
    ap.add_argument("--flops", type=float, default=None,
                    help="FLOPs (MACs) budget for every space run; default: median of NNI FlopsProfiler counts of "
                         "20 seeded random samples of each space")
    ap.add_argument("--train-size", type=int, default=None,
                    help=f"training images per evaluation; default per space {dict((k, v[0]) for k, v in DEFAULT_SIZES.items())}")
    ap.add_argument("--val-size", type=int, default=None,
                    help=f"validation images; default per space {dict((k, v[1]) for k, v in DEFAULT_SIZES.items())}")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--ilp-designs", type=int, default=3, help="evaluations after the estimate (ILP designs)")
    ap.add_argument("--estimate", choices=("swap", "lstsq"), default="swap",
                    help="MathNAS estimate; both need the same minimum (the model's free parameters)")
    ap.add_argument("--darts-width", type=int, default=4)
    ap.add_argument("--darts-cells", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on 2 shared cores 2 threads ran ~5x slower per batch)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HOME"] = str(out / "home")          # NasExperiment writes ~/nni-experiments/.experiment
    (out / "home").mkdir(exist_ok=True)
    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
    import torch
    torch.set_num_threads(args.threads)
    command = "OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/mathnas_spaces.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    records = []
    for name in (SPACES if args.space == "both" else (args.space,)):
        records.append(run_space(name, args, out))
        (out / "results.json").write_text(json.dumps({"command": command, "spaces": records}, indent=1, default=str))
        (out / "results.md").write_text(markdown(records, command))
        r = records[-1]
        if "error" not in r and r.get("final_design"):
            d = r["final_design"]
            print(f"[{name}] estimate {r['estimate_evaluations']} evals in {r['estimate_s']:.0f}s; ILP {r['ilp_s']:.3f}s "
                  f"({r['ilp_calls']} calls); design MACs {d['frozen_flops']/1e6:.4f}M (budget {r['flops_budget']/1e6:.4f}M), "
                  f"params {d['frozen_params']:.0f}; val acc {d['accuracy']:.4f} (best estimate "
                  f"{r['best_estimate_accuracy']:.4f}); total {r['total_s']:.0f}s", flush=True)
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
