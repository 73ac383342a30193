"""NNI trial: build the network of the proposed parameters, train it for real, report accuracy.

    python -m deepmad_nni.tuner.trial --family mbv2-se-cifar --dataset fashion-mnist --resolution 14 \
        --train-size 10000 --test-size 2000 --val-fraction 0.1 --epochs 5

Under NNI the parameters come from ``nni.get_next_parameter()`` (any tuner: DeepMAD, TPE, ...);
standalone, from ``--parameters '{"s1_width": 24, ...}'``.  The network's input channels, resolution and
classes follow the data.  Reports ``nni.report_intermediate_result(accuracy)`` every epoch and
``nni.report_final_result({"default": accuracy, "test_accuracy", "flops", "params", "wall_time_s",
"device", "device_name", "epochs", ...})``; accuracy is on the validation split when ``--val-fraction``
> 0, else on the test split.  The final result also carries the network's DeepMAD figures, computed
from the built architecture with the same score the solver uses (:func:`deepmad_nni.core.score`):
``entropy``, ``rho`` (= ``effectiveness``), ``q`` (depth penalty) and ``objective`` (entropy - beta q);
pass the tuner's ``alpha`` / ``beta`` / ``convention`` (``--alpha 1,1,1,8 --beta 10``) when its classArgs
change them.  The solver's status of a proposal is the tuner's (dispatcher log), not the trial's.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from ..core.score import CONVENTIONS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", help="family template name (deepmad_nni FAMILIES)")
    p.add_argument("--structure-file", help="or a structure-format design file as the template")
    p.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "digits", "cifar10"))
    p.add_argument("--data-dir", default=None, help="dataset folder (CIFAR-10 batches; Fashion-MNIST idx files)")
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--val-fraction", type=float, default=0.0)
    p.add_argument("--resolution", type=int, default=None, help="resize the images (integer factor)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu / cuda / cuda:N (default: CUDA when available)")
    p.add_argument("--activation", default=None, help="relu (default) or silu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--parameters", default=None, help="JSON parameters when run outside NNI")
    p.add_argument("--alpha", default=None, help="DeepMAD per-stage entropy weights for the reported objective, "
                   "comma-separated (default: the solver's, 1,...,1,8)")
    p.add_argument("--beta", type=float, default=10.0, help="DeepMAD depth-penalty weight for the objective (10)")
    p.add_argument("--convention", default="official", choices=list(CONVENTIONS),
                   help="DeepMAD scoring convention for the reported figures")


def template_of(args):
    from ..core import get_family, parse_structure_text
    if (args.family is None) == (args.structure_file is None):
        raise ValueError("Give exactly one of --family and --structure-file.")
    if args.family is not None:
        return get_family(args.family)
    from .tuner import family_of_structure
    with open(args.structure_file) as f:
        return family_of_structure(parse_structure_text(f.read()))


def run(args) -> dict:
    import nni
    import torch

    from ..builder import build_model
    from ..core import score
    from ..data import load_dataset
    from ..training import seed_everything, train_and_evaluate
    from .space import architecture_from_parameters

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    params = json.loads(args.parameters) if args.parameters else (nni.get_next_parameter() or {})
    data = load_dataset(args.dataset, data_dir=args.data_dir, train_size=args.train_size, test_size=args.test_size,
                        resolution=args.resolution, val_fraction=args.val_fraction, seed=args.seed)
    arch = architecture_from_parameters(params, template_of(args), resolution=data.resolution,
                                        in_channels=data.in_channels, num_classes=data.num_classes)
    alpha = [float(a) for a in args.alpha.split(",")] if args.alpha else None
    s = score(arch, alpha=alpha, beta=args.beta, convention=args.convention)
    seed_everything(args.seed)
    model = build_model(arch, activation=args.activation)
    result = train_and_evaluate(model, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                device=args.device, seed=args.seed,
                                report=lambda epoch, acc: nni.report_intermediate_result(acc))
    final = {"default": result["accuracy"], "test_accuracy": result["test_accuracy"],
             "best_accuracy": result["best_accuracy"], "eval_split": result["eval_split"],
             "flops": s.flops, "params": s.params, "effectiveness": s.effectiveness, "rho": s.effectiveness,
             "entropy": s.entropy, "q": s.q, "objective": s.objective,
             "train_time_s": result["wall_time_s"], "wall_time_s": time.perf_counter() - t0,
             "device": result["device"], "device_name": result["device_name"], "epochs": result["epochs"],
             "dataset": data.name, "train_images": result["train_images"]}
    nni.report_final_result(final)
    return final


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepmad_nni.tuner.trial", description=__doc__.split("\n")[0])
    add_arguments(parser)
    final = run(parser.parse_args(argv))
    print(json.dumps(final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
