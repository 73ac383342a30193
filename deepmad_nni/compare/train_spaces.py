"""The package's CIFAR-scale NNI spaces (``search_spaces.CONFIGS``, resolution 32) on the training track.

NNI strategies search the space as shipped (its labels and choices; its stem takes 3 channels at 32x32).  A
sample is mapped to its core :class:`~deepmad_nni.core.Architecture` (``SpaceConfig.architecture_of_sample``)
and moved to the dataset's input (channels, resolution, classes); that architecture is what gets counted
(``core.score``: FLOPs = MACs, params), built (``deepmad_nni.builder.build_model``) and trained.  DeepMAD
solves the space's core Family moved to the same input, so every strategy sees the same networks.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import random
import statistics

from deepmad_nni.core import Architecture

ENUMERATE_MAX = 5000  # median FLOPs over every sample up to this size, else over a seeded random subset
SUBSET = 1000


def cifar_spaces() -> list[str]:
    from search_spaces import CONFIGS
    return sorted(name for name, c in CONFIGS.items() if c.resolution == 32)


class PackageSpace:
    """One CIFAR-scale package space at a dataset's input (see the module docstring)."""

    def __init__(self, name: str, *, in_channels: int, resolution: int, num_classes: int):
        from search_spaces import CONFIGS
        names = cifar_spaces()
        if name not in names:
            raise ValueError(f"space must be 'nas-bench-macro' or one of {names}, but got {name!r}.")
        self.name, self.config = name, CONFIGS[name]
        self.in_channels, self.resolution, self.num_classes = in_channels, resolution, num_classes
        self.family = dataclasses.replace(self.config.family(), resolution=resolution, in_channels=in_channels,
                                          num_classes=num_classes)
        self.space_in_channels = 3  # the NNI space's stem (what a one-shot supernet is fed)

    def nni_space(self):
        """A fresh NNI ModelSpace of the preset."""
        from search_spaces import get_space
        return get_space(self.name)

    def architecture(self, sample: dict) -> Architecture:
        arch = self.config.architecture_of_sample(sample)
        stem = dataclasses.replace(arch.stages[0], c_in=self.in_channels)
        return Architecture((stem,) + arch.stages[1:], self.resolution, self.in_channels, self.num_classes)

    def sample_of_architecture(self, arch: Architecture) -> dict:
        return self.config.sample_of_architecture(arch)

    def flops_params(self, sample: dict) -> tuple[float, float]:
        from deepmad_nni.core import score
        s = score(self.architecture(sample))
        return float(s.flops), float(s.params)

    def samples(self):
        """Every sample (or ``SUBSET`` seeded random ones when the space has more than ``ENUMERATE_MAX``)."""
        labels = {k: list(v.values) for k, v in self.nni_space().simplify().items()}
        size = 1
        for values in labels.values():
            size *= len(values)
        if size <= ENUMERATE_MAX:
            return [dict(zip(labels, combo)) for combo in itertools.product(*labels.values())]
        rng = random.Random(0)
        return [{k: rng.choice(v) for k, v in labels.items()} for _ in range(SUBSET)]

    def median_flops(self) -> float:
        return float(statistics.median(self.flops_params(s)[0] for s in self.samples()))

    @staticmethod
    def arch_id(sample: dict) -> str:
        return json.dumps(sample, sort_keys=True)

    def build(self, sample: dict):
        from deepmad_nni.builder import build_model
        return build_model(self.architecture(sample))
