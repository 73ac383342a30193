"""DeepMADOptuna on NNI hub spaces in a NasExperiment with a real (short-training) evaluator.

    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/optuna_hub_spaces.py --out /tmp/deepmad-hub [--trials 10]

Spaces and budgets (MACs at 224 px): MobileNetV3Space at 300M, ProxylessNAS at 320M.  The evaluator is real
but tiny: the frozen network trains for one epoch on 1,024 Fashion-MNIST images at 56 px (grey repeated to
3 channels; Adam, lr 1e-3, batch 64) and reports its accuracy on 512 held-out images.  It ranks little
better than chance at this size; it is here to run the strategy end to end on real trained metrics, not to
rank networks.  Printed per space: distinct networks, each design's MACs/params by NNI's FlopsProfiler
(count_normalization/activation/bias off) / NumParamsProfiler at 224 px against the budget, the accuracy,
and the strategy's own time per trial (wall time minus the evaluations').  Everything NNI writes goes under
--out (HOME too).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")

EVAL_S: list = []


def short_training(model):
    """One epoch on 1,024 Fashion-MNIST images at 56 px; accuracy on 512 held-out images."""
    import nni
    import torch
    from deepmad_nni.data import load_dataset
    t0 = time.perf_counter()
    torch.manual_seed(0)
    data = load_dataset("fashion-mnist", train_size=1536, test_size=16, resolution=56, val_fraction=1 / 3, seed=0)
    x, y = torch.from_numpy(data.x_train).repeat(1, 3, 1, 1), torch.from_numpy(data.y_train)
    xv, yv = torch.from_numpy(data.x_val).repeat(1, 3, 1, 1), torch.from_numpy(data.y_val)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for i in range(0, len(y), 64):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(xv).argmax(1) == yv).float().mean())
    EVAL_S.append(time.perf_counter() - t0)
    nni.report_final_result(acc)


def run(name, space_fn, flops, trials, out: Path):
    import torch
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler

    from deepmad_nni import DeepMADOptuna
    space = space_fn()
    config = NasExperimentConfig("sequential", "simplified", "local")
    config.experiment_working_directory = str(out / "nni-experiments")
    config.max_trial_number = trials
    strategy = DeepMADOptuna(flops=flops, seed=0)
    EVAL_S.clear()
    exp = NasExperiment(space, FunctionalEvaluator(short_training), strategy, config)
    t0 = time.perf_counter()
    try:
        exp.run()
    finally:
        exp.stop()
    wall = time.perf_counter() - t0
    x = torch.zeros(1, 3, 224, 224)
    rows = []
    for p in strategy.history:
        model = space.freeze(p.sample)
        f = float(FlopsProfiler(model, x, count_normalization=False, count_activation=False,
                                count_bias=False).expression)
        n = float(NumParamsProfiler(model, x).expression)
        rows.append((p.network, p.source, p.score.objective, f, n, p.metric))
    distinct = len({r[0] for r in rows})
    per_trial = (wall - sum(EVAL_S)) / max(len(rows), 1)
    print(f"\n{name} at {flops / 1e6:.0f}M MACs: {len(rows)} trials, {distinct} distinct networks, "
          f"rho_0 range {tuple(round(v, 4) for v in strategy.ranges.rho)}, strategy time per trial {per_trial:.1f} s "
          f"(wall {wall:.0f} s, evaluations {sum(EVAL_S):.0f} s)")
    print("| # | source | objective | MACs (NNI profiler) | params | within budget | accuracy |")
    print("|---|---|---|---|---|---|---|")
    for i, (_, src, obj, f, n, acc) in enumerate(rows):
        print(f"| {i} | {src} | {obj:.1f} | {f / 1e6:.2f}M | {n / 1e6:.3f}M | {f <= flops} | "
              f"{acc if acc is None else round(acc, 3)} |")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["HOME"] = str(out)          # NNI's ~/nni-experiments registry goes under --out
    from nni.nas.hub.pytorch import MobileNetV3Space, ProxylessNAS
    for name, fn, flops in (("MobileNetV3Space", MobileNetV3Space, 300e6), ("ProxylessNAS", ProxylessNAS, 320e6)):
        run(name, fn, flops, args.trials, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
