"""DeepMAD vs NNI's built-in strategies: the comparison behind ``deepmad-nni compare`` (same arguments).

Full NAS-Bench-Macro run of docs/compare.md (3 budgets, 10 seeds, N = 10, 30, 100):

    PYTHONPATH=. python experiments/compare.py --track nas-bench-macro --seeds 10 --ns 10,30,100 \
        --out /tmp/deepmad-compare-bench

Minute-scale real training on Fashion-MNIST:

    PYTHONPATH=. python experiments/compare.py --track fashion-mnist --out /tmp/deepmad-compare-fmnist

The same on a package CIFAR-scale space, with NNI's one-shot strategies (docs/compare.md):

    PYTHONPATH=. python experiments/compare.py --track fashion-mnist --space resnet-basic-cifar-small \
        --strategies deepmad,random,evolution,darts,gumbel-darts,random-oneshot --seeds 1 --ns 2 \
        --train-size 1000 --epochs 3 --out /tmp/deepmad-compare-resnet
"""
import argparse
import os
import sys
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
warnings.filterwarnings("ignore", message=".*Gym has been unmaintained.*")

from deepmad_nni.commands import compare  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=compare.__doc__)
    compare.add_arguments(parser)
    sys.exit(compare.run(parser.parse_args()))
