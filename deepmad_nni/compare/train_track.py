"""Track (b): real training on Fashion-MNIST.  The space is the CIFAR-scale NAS-Bench-Macro space (1 input
channel, ``resolution`` x ``resolution`` images); each query trains a fresh network on a small subset and
returns its validation accuracy (%); its cost is the measured wall time on the device used."""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

from .harness import Budget
from .records import Candidate

TRACK = "fashion-mnist"


@lru_cache(maxsize=2)
def _space_and_profilers(resolution: int):
    import torch
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler

    from search_spaces.nas_bench_macro import NasBenchMacroSpace
    space = NasBenchMacroSpace(num_classes=10, in_channels=1)
    x = torch.zeros(1, 1, resolution, resolution)
    from .harness import quiet_nni
    with quiet_nni():  # "Identity is not counted": right, an identity has no FLOPs
        return (space, FlopsProfiler(space, x, count_normalization=False, count_activation=False, count_bias=False),
                NumParamsProfiler(space, x))


def median_flops(resolution: int) -> float:
    """The median MACs over the space's 6561 samples at this resolution (the default budget)."""
    import itertools
    import statistics

    from search_spaces.nas_bench_macro import sample_of_key
    _, flops, _ = _space_and_profilers(resolution)
    return float(statistics.median(flops.profile(sample_of_key("".join(k)))
                                   for k in itertools.product("012", repeat=8)))


class TrainingProblem:
    """Fashion-MNIST under one budget: the NNI space, a real-training evaluator, DeepMAD over the same space."""

    track = TRACK

    def __init__(self, budget: Budget, *, data, epochs: int = 1, batch_size: int = 128, lr: float = 0.05,
                 device=None, seed: int = 0):
        from ..training import device_name, resolve_device
        self.budget, self.data, self.epochs, self.batch_size, self.lr, self.seed = (
            budget, data, epochs, batch_size, lr, seed)
        self.resolution = data.resolution
        self.space, self._flops, self._params = _space_and_profilers(self.resolution)
        self._device = resolve_device(device)
        self.device = device_name(self._device)
        self.reference_accuracy = math.nan  # unknown: the summary uses the best accuracy any strategy measured

    def flops_params(self, sample: dict) -> tuple[float, float]:
        return float(self._flops.profile(sample)), float(self._params.profile(sample))

    def within_budget(self, sample: dict) -> bool:
        return self.budget.admits(*self.flops_params(sample))

    def evaluate(self, sample: dict) -> Candidate:
        from nni.nas.space import model_context

        from search_spaces.nas_bench_macro import NasBenchMacroSpace, key_of_sample

        from ..training import seed_everything, train_and_evaluate
        seed_everything(self.seed)
        with model_context(sample):  # NNI builds the frozen network directly, freshly initialised
            model = NasBenchMacroSpace(num_classes=self.data.num_classes, in_channels=self.data.in_channels)
        out = train_and_evaluate(model, self.data, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                 device=self._device, seed=self.seed)
        flops, params = self.flops_params(sample)
        return Candidate(key_of_sample(sample), 100.0 * out["accuracy"], flops, params, out["wall_time_s"])

    def deepmad_samples(self, k: int, *, rho=None, beta=None):
        from ..benchmarks.nas_bench_macro import key_of_architecture
        from ..core import get_family, solve
        from search_spaces.nas_bench_macro import sample_of_key
        from .bench_track import network_of_key
        family = dataclasses.replace(get_family("nas-bench-macro"), resolution=self.resolution,
                                     in_channels=self.data.in_channels, num_classes=self.data.num_classes)
        kwargs = {} if beta is None else {"beta": beta}
        result = solve(family, flops=self.budget.flops, params=self.budget.params, rho=rho, top_k=3 * k, **kwargs)
        keys, seen = [], set()
        for design in result.designs:
            key = key_of_architecture(design.architecture)
            if network_of_key(key) not in seen:
                seen.add(network_of_key(key))
                keys.append(key)
        return [sample_of_key(key) for key in keys[:k]], {"status": result.status, "solve_s": round(result.time_s, 3),
                                                         "top1": keys[0] if keys else None}
