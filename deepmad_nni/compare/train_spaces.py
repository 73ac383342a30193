"""The package's CIFAR-scale NNI spaces on the training track: the ``search_spaces.CONFIGS`` presets at resolution
32 (:class:`PackageSpace`) and SPACH (:class:`SpachTrackSpace`).

**Package spaces.**  NNI strategies search the space as shipped (its labels and choices; its stem takes 3 channels at 32x32).  A
sample is mapped to its core :class:`~deepmad_nni.core.Architecture` (``SpaceConfig.architecture_of_sample``)
and moved to the dataset's input (channels, resolution, classes); that architecture is what gets counted
(``core.score``: FLOPs = MACs, params), built (``deepmad_nni.builder.build_model``) and trained.  DeepMAD
solves the space's core Family moved to the same input, so every strategy sees the same networks.

**SPACH** (``search_spaces/spach.py``; ``spach-cifar`` with the conv / attention / token-MLP mixers,
``spach-cifar-conv`` its convolution-only subspace).  It has no core Family: the NNI space is built for the
dataset's input (``SpachConfig`` with the data's channels, resolution and classes, so that the token-mixing
MLPs have that input's token counts); FLOPs (MACs) and params are NNI's ``FlopsProfiler(count_normalization=
False, count_activation=False, count_bias=False)`` and ``NumParamsProfiler`` on that space, which equal the
profilers on the frozen network; a candidate is ``space.freeze(sample)``, freshly initialised.  DeepMAD designs
through the reader route (:func:`deepmad_nni.nas.route.route_of` at the dataset's input) where the reader reads
the space (the conv-only subspace); on the full space the reader refuses the attention / token-MLP mixers and
DeepMAD's strategies are skipped with its reason.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import random
import statistics
from functools import lru_cache

from deepmad_nni.core import Architecture

ENUMERATE_MAX = 5000  # median FLOPs over every sample up to this size, else over a seeded random subset
SUBSET = 1000


def cifar_spaces() -> list[str]:
    from search_spaces import CONFIGS
    return sorted(name for name, c in CONFIGS.items() if c.resolution == 32)


SPACH_SPACES = {"spach-cifar": None, "spach-cifar-conv": ("conv",)}  # track name -> mixers offered (None: all)
# The track's default side on SPACH: the side must be a multiple of patch 2 * 2**(3 - 1) = 8 (the track's 14 is
# not), and Fashion-MNIST's 28 px images resize by whole factors only (7, 14, 28, 56, ...): 56 is the smallest
# side both take.
SPACH_RESOLUTION = 56


def track_spaces() -> list[str]:
    """Every ``space`` the training track takes besides ``nas-bench-macro``."""
    return cifar_spaces() + sorted(SPACH_SPACES)


def _space_error(name) -> ValueError:
    return ValueError(f"space must be 'nas-bench-macro' or one of {track_spaces()}, but got {name!r}.")


class _TrackSpace:
    """What both kinds of space share: samples, their median FLOPs, an id per sample."""

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


class PackageSpace(_TrackSpace):
    """One CIFAR-scale package space at a dataset's input (see the module docstring)."""

    def __init__(self, name: str, *, in_channels: int, resolution: int, num_classes: int):
        from search_spaces import CONFIGS
        names = cifar_spaces()
        if name not in names:
            raise _space_error(name)
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

    def build(self, sample: dict):
        from deepmad_nni.builder import build_model
        return build_model(self.architecture(sample))

    def deepmad_unavailable(self) -> str:
        return ""

    def deepmad_route(self, space):
        """The core Family at the dataset's input over ``space`` (what DeepMAD's NNI strategies solve)."""
        from deepmad_nni.nas.route import CoreRoute
        return CoreRoute(space, (self.family, self.sample_of_architecture, self.architecture))

    def deepmad_samples(self, budget, k: int, *, rho=None, beta=None):
        """DeepMAD's ``k`` best distinct networks within ``budget`` (core solve of the family) and a summary."""
        from deepmad_nni.core import solve
        kwargs = {} if beta is None else {"beta": beta}
        result = solve(self.family, flops=budget.flops, params=budget.params, rho=rho, top_k=k, **kwargs)
        samples, seen = [], set()
        for design in result.designs:
            sample = self.sample_of_architecture(design.architecture)
            if self.arch_id(sample) not in seen:
                seen.add(self.arch_id(sample))
                samples.append(sample)
        return samples[:k], {"status": result.status, "solve_s": round(result.time_s, 3),
                             "top1": self.arch_id(samples[0]) if samples else None}


_MACS = {"count_normalization": False, "count_activation": False, "count_bias": False}


@lru_cache(maxsize=4)
def _spach_profilers(config):
    """(space, FlopsProfiler, NumParamsProfiler) of the SPACH space of ``config`` (a frozen SpachConfig) at its
    own input; one per input, shared by the problems of every budget."""
    import torch
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler

    from search_spaces.spach import SpachSpace

    from .harness import quiet_nni
    with quiet_nni():
        space = SpachSpace(config)
        x = torch.zeros(1, config.in_channels, config.resolution, config.resolution)
        return space, FlopsProfiler(space, x, **_MACS), NumParamsProfiler(space, x)


class SpachTrackSpace(_TrackSpace):
    """A SPACH space (``SPACH_SPACES``) at a dataset's input (see the module docstring): NNI's counts,
    ``space.freeze`` to build, DeepMAD through the reader where the reader reads it."""

    family = None  # no core Family: DeepMAD goes through the reader route

    def __init__(self, name: str, *, in_channels: int, resolution: int, num_classes: int):
        from search_spaces.spach import SPACH_CONFIGS
        if name not in SPACH_SPACES:
            raise _space_error(name)
        base = SPACH_CONFIGS["spach-cifar"]
        mixers = SPACH_SPACES[name] or base.mixers
        try:
            self.config = dataclasses.replace(base, in_channels=in_channels, resolution=resolution,
                                              num_classes=num_classes, mixers=mixers)
        except ValueError as err:
            raise ValueError(f"space {name!r} cannot take the dataset's {in_channels}x{resolution}x{resolution} "
                             f"input: {err} (the track's default side on SPACH is {SPACH_RESOLUTION}, the smallest "
                             "multiple of 8 that Fashion-MNIST's 28 px images resize to).") from None
        self.name, self.in_channels, self.resolution, self.num_classes = name, in_channels, resolution, num_classes
        self.space_in_channels = in_channels  # the space is built for the data's channels
        self._space, self._flops, self._params = _spach_profilers(self.config)
        self._route, self._refusal = None, None

    @property
    def input_size(self) -> tuple:
        """The (N, C, H, W) input the space is built and counted at."""
        return (1, self.in_channels, self.resolution, self.resolution)

    def nni_space(self):
        """A fresh NNI ModelSpace of SPACH at the dataset's input."""
        from search_spaces.spach import SpachSpace
        return SpachSpace(self.config)

    def flops_params(self, sample: dict) -> tuple[float, float]:
        return float(self._flops.profile(sample)), float(self._params.profile(sample))

    def build(self, sample: dict):
        """The frozen network of ``sample`` (NNI rebuilds it under the sample: freshly initialised)."""
        return self._space.freeze(sample)

    def _read(self):
        if self._route is None and self._refusal is None:
            from deepmad_nni.nas.route import route_of
            from deepmad_nni.nas.trace import UnsupportedModuleError
            try:
                self._route = route_of(self._space, self.input_size)
            except UnsupportedModuleError as err:
                self._refusal = (f"DeepMAD's reader refuses space {self.name!r}, whose attention and token-mixing "
                                 f"MLP mixers are not convolutions ({err}); its conv-only subspace "
                                 "'spach-cifar-conv' runs.")
        return self._route

    def deepmad_unavailable(self) -> str:
        """Why DeepMAD cannot design over this space ("" when the reader reads it)."""
        self._read()
        return self._refusal or ""

    def deepmad_route(self, space):
        """The reader route of ``space`` at the dataset's input (its counts are NNI's, as the filter's)."""
        from deepmad_nni.nas.route import route_of
        if self._read() is None:
            raise ValueError(self._refusal)
        return route_of(space, self.input_size)

    def deepmad_samples(self, budget, k: int, *, rho=None, beta=None):
        """DeepMAD's ``k`` best distinct networks within ``budget`` over the reader route, and a summary."""
        route = self._read()
        if route is None:
            raise ValueError(self._refusal)
        program = {"flops": budget.flops, "params": budget.params, "beta": 10.0 if beta is None else beta}
        rho = route.resolve_rho(rho, **program)
        result, records = route.solve(**program, rho=rho, top_k=3 * k)
        samples = [r.sample for r in records][:k]
        return samples, {"status": result.status, "solve_s": round(result.time_s, 3), "rho": rho,
                         "top1": self.arch_id(samples[0]) if samples else None}
