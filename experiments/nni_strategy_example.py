"""DeepMAD as an NNI 3.0 strategy in a NasExperiment, on MobileNetV3Space and the package's ResNet space.

    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/nni_strategy_example.py --workdir /tmp/deepmad-nni
    ... --strategy random         # the same script with nni.nas.strategy.Random swapped in
    ... --engine ts --port 8081   # NNI manager + web UI (one process per trial) instead of in-process

The evaluator does nothing heavy: it reports the frozen model's parameter count (in millions), or with
``--train`` one epoch-like pass of SGD on random data, so the run shows the plumbing (solve, freeze,
submit, metrics), not accuracy.  Everything the experiment writes goes under ``--workdir``.
"""
from __future__ import annotations

import argparse
import logging
import os
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")


def evaluate(model, train: bool = False):
    """Report params in millions; with ``train``, a few SGD steps on random data and report minus the loss."""
    import nni
    import torch
    if not train:
        nni.report_final_result(sum(p.numel() for p in model.parameters()) / 1e6)
        return
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    nni.report_final_result(-float(loss))


def make_strategy(kind: str, **budget):
    from nni.nas.strategy import Random, RegularizedEvolution

    from deepmad_nni.nas.strategy import DeepMAD
    if kind == "deepmad":
        return DeepMAD(**budget)            # the one line that differs from a Random/Evolution script
    if kind == "random":
        return Random(dedup=True, seed=0)
    return RegularizedEvolution(population_size=4, sample_size=2)


def run(space, budget, args, name):
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    config = NasExperimentConfig(args.engine, "simplified", "local")
    config.experiment_working_directory = os.path.abspath(args.workdir)
    config.max_trial_number = args.trials
    config.trial_concurrency = 1
    if args.engine == "ts":
        config.training_service.use_active_gpu = False
    strategy = make_strategy(args.strategy, **budget)
    exp = NasExperiment(space, FunctionalEvaluator(evaluate, train=args.train), strategy, config)
    try:
        exp.run(port=args.port) if args.engine == "ts" else exp.run()
        top = exp.export_top_models(top_k=args.trials, formatter="dict")
    finally:
        exp.stop()
    print(f"\n== {name} with {strategy!r}: {len(top)} model(s) evaluated")
    for sample in top[:3]:
        print("  ", sample)
    for d in getattr(strategy, "designs", []):
        print(f"   DeepMAD design: objective {d.objective:.1f}, rho {d.effectiveness:.3f}, "
              f"FLOPs {d.flops / 1e6:.1f} M, params {d.params / 1e6:.2f} M, status {d.status}, gap {d.gap:.3g}, metric {d.metric}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategy", choices=("deepmad", "random", "evolution"), default="deepmad")
    parser.add_argument("--engine", choices=("sequential", "ts"), default="sequential")
    parser.add_argument("--workdir", required=True, help="directory for the NNI experiment files")
    parser.add_argument("--trials", type=int, default=2, help="models per experiment (DeepMAD: top_k)")
    parser.add_argument("--port", type=int, default=8081, help="web UI port (ts engine)")
    parser.add_argument("--train", action="store_true", help="a few SGD steps on random data instead of params")
    parser.add_argument("--spaces", default="mobilenetv3,resnet", help="comma-separated: mobilenetv3, resnet")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
    logging.getLogger("nni").setLevel(logging.WARNING)
    from nni.nas.hub.pytorch import MobileNetV3Space

    from search_spaces import resnet_space
    for which in args.spaces.split(","):
        if which == "mobilenetv3":
            budget = dict(flops=300e6, params=5e6, rho=0.5, top_k=args.trials, time_limit=5.0, seed=0)
            run(MobileNetV3Space(), budget, args, "MobileNetV3Space")
        elif which == "resnet":
            budget = dict(flops=150e6, rho=0.3, top_k=args.trials)
            run(resnet_space("resnet-basic-cifar-small"), budget, args, "ResNet (resnet-basic-cifar-small)")
        else:
            raise ValueError(f"--spaces entries must be mobilenetv3 or resnet, but got {which!r}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
