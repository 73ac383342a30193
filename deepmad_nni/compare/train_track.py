"""Track (b): real training on Fashion-MNIST.  The space is the CIFAR-scale NAS-Bench-Macro space (default;
1 input channel, ``resolution`` x ``resolution`` images), one of the package's CIFAR-scale spaces or SPACH
(``space=``, see :mod:`.train_spaces`); each query trains a fresh network on a small subset and returns its
validation accuracy (%); its cost is the measured wall time on the device used."""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

from .harness import Budget
from .records import Candidate

TRACK = "fashion-mnist"
MACRO = "nas-bench-macro"


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
                 device=None, seed: int = 0, space: str = MACRO):
        from ..training import device_name, resolve_device
        self.budget, self.data, self.epochs, self.batch_size, self.lr, self.seed = (
            budget, data, epochs, batch_size, lr, seed)
        self.resolution, self.space_name, self._package = data.resolution, space, None
        if space == MACRO:
            self.space, self._flops, self._params = _space_and_profilers(self.resolution)
            self.space_in_channels = data.in_channels
        else:
            self._package = package_space(space, data)
            self.space, self.space_in_channels = self._package.nni_space(), self._package.space_in_channels
        self._device = resolve_device(device)
        self.device = device_name(self._device)
        self.reference_accuracy = math.nan  # unknown: the summary uses the best accuracy any strategy measured

    @property
    def profiler_input_size(self) -> tuple | None:
        """The (N, C, H, W) input at which this problem's FLOPs/params are NNI's profiler counts (NAS-Bench-Macro,
        SPACH); None where the core counts them (the package spaces)."""
        if self._package is None:
            return (1, self.space_in_channels, self.resolution, self.resolution)
        return getattr(self._package, "input_size", None)

    def deepmad_unavailable(self) -> str:
        """Why DeepMAD's strategies cannot design over this space ("" when they can)."""
        return "" if self._package is None else self._package.deepmad_unavailable()

    @property
    def space_size(self) -> int:
        """Number of samples of the NNI space."""
        size = 1
        for choice in self.space.simplify().values():
            size *= len(choice.values)
        return size

    def fresh_space(self):
        """A new NNI ModelSpace of this problem's space (one-shot strategies turn it into a supernet in place)."""
        if self._package is not None:
            return self._package.nni_space()
        from search_spaces.nas_bench_macro import NasBenchMacroSpace
        return NasBenchMacroSpace(num_classes=self.data.num_classes, in_channels=self.data.in_channels)

    def flops_params(self, sample: dict) -> tuple[float, float]:
        if self._package is not None:
            return self._package.flops_params(sample)
        return float(self._flops.profile(sample)), float(self._params.profile(sample))

    def within_budget(self, sample: dict) -> bool:
        return self.budget.admits(*self.flops_params(sample))

    def evaluate(self, sample: dict) -> Candidate:
        from nni.nas.space import model_context

        from search_spaces.nas_bench_macro import NasBenchMacroSpace, key_of_sample

        from ..training import seed_everything
        seed_everything(self.seed)
        if self._package is not None:
            return self._train(self._package.build(sample), self._package.arch_id(sample), sample)
        with model_context(sample):  # NNI builds the frozen network directly, freshly initialised
            model = NasBenchMacroSpace(num_classes=self.data.num_classes, in_channels=self.data.in_channels)
        return self._train(model, key_of_sample(sample), sample)

    def _train(self, model, arch_id: str, sample: dict) -> Candidate:
        from ..training import train_and_evaluate
        out = train_and_evaluate(model, self.data, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                 device=self._device, seed=self.seed)
        flops, params = self.flops_params(sample)
        return Candidate(arch_id, 100.0 * out["accuracy"], flops, params, out["wall_time_s"])

    def deepmad_family(self):
        """The core Family of this space at the dataset's input (what DeepMAD solves); None on SPACH (read by
        the reader instead, see :meth:`deepmad_route`)."""
        if self._package is not None:
            return self._package.family
        from ..core import get_family
        return dataclasses.replace(get_family("nas-bench-macro"), resolution=self.resolution,
                                   in_channels=self.data.in_channels, num_classes=self.data.num_classes)

    def deepmad_route(self):
        """What DeepMAD's NNI strategies (``DeepMADOptuna``, ``DeepMADEvolution``) solve over: this NNI space with
        the core Family at the dataset's input (:meth:`deepmad_family`), so that their FLOPs/params are the ones
        this problem counts (``route_of(self.space)`` alone would read the space's family at 3x32x32); on SPACH
        the reader route at the dataset's input."""
        if self._package is not None:
            return self._package.deepmad_route(self.space)
        from ..nas.route import CoreRoute
        family = self.deepmad_family()
        from search_spaces.nas_bench_macro import key_of_sample

        from ..benchmarks.nas_bench_macro import choices_of_key
        return CoreRoute(self.space, (family, self.sample_of_architecture,
                                      lambda sample: family.architecture(choices_of_key(key_of_sample(sample)))))

    def sample_of_architecture(self, arch) -> dict:
        if self._package is not None:
            return self._package.sample_of_architecture(arch)
        from search_spaces.nas_bench_macro import sample_of_key

        from ..benchmarks.nas_bench_macro import key_of_architecture
        return sample_of_key(key_of_architecture(arch))

    def deepmad_samples(self, k: int, *, rho=None, beta=None):
        if self._package is not None:
            return self._package.deepmad_samples(self.budget, k, rho=rho, beta=beta)
        from search_spaces.nas_bench_macro import sample_of_key

        from ..core import get_family, solve
        from .bench_track import distinct_keys
        family = dataclasses.replace(get_family("nas-bench-macro"), resolution=self.resolution,
                                     in_channels=self.data.in_channels, num_classes=self.data.num_classes)
        kwargs = {} if beta is None else {"beta": beta}
        result = solve(family, flops=self.budget.flops, params=self.budget.params, rho=rho, top_k=3 * k, **kwargs)
        keys = distinct_keys(result)
        return [sample_of_key(key) for key in keys[:k]], {"status": result.status, "solve_s": round(result.time_s, 3),
                                                         "top1": keys[0] if keys else None}


def package_space(name: str, data):
    """The track's space ``name`` (not NAS-Bench-Macro) at the dataset's input."""
    from .train_spaces import SPACH_SPACES, PackageSpace, SpachTrackSpace
    kind = SpachTrackSpace if name in SPACH_SPACES else PackageSpace
    return kind(name, in_channels=data.in_channels, resolution=data.resolution, num_classes=data.num_classes)


def space_median_flops(space: str, data) -> float:
    """The default budget of a space: its median MACs at the dataset's input."""
    if space == MACRO:
        return median_flops(data.resolution)
    return package_space(space, data).median_flops()
