"""Track (a): NAS-Bench-Macro.  Each query is one fully trained CIFAR-10 network looked up in the table
(its mean test accuracy over the benchmark's three seeds); its cost is the :class:`CostModel` GPU time."""
from __future__ import annotations

from functools import lru_cache

from .cost import CostModel
from .harness import Budget
from .records import Candidate

TRACK = "nas-bench-macro"
FAMILY = "nas-bench-macro"
# 25th / 50th / 75th percentiles of the benchmark's FLOPs (45.5M, 55.4M, 65.4M MACs), rounded.
DEFAULT_BUDGETS = (Budget("45M", flops=45e6), Budget("55M", flops=55e6), Budget("65M", flops=65e6))


def network_of_key(key: str) -> str:
    """A canonical key of the network a key describes: identities after a stage's first layer are no-ops,
    so only the order of that stage's non-identity ops matters (keys '11011011' and '11011101' coincide)."""
    out, i = [], 0
    for depth in (2, 3, 3):
        stage = key[i:i + depth]
        rest = [c for c in stage[1:] if c != "0"]
        out.append(stage[0] + "".join(rest) + "0" * (depth - 1 - len(rest)))
        i += depth
    return "".join(out)


@lru_cache(maxsize=1)
def _space_and_profilers():
    import torch
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler

    from search_spaces.nas_bench_macro import NasBenchMacroSpace
    space = NasBenchMacroSpace()
    x = torch.zeros(1, 3, 32, 32)
    from .harness import quiet_nni
    with quiet_nni():  # "Identity is not counted": right, an identity has no FLOPs
        return (space, FlopsProfiler(space, x, count_normalization=False, count_activation=False, count_bias=False),
                NumParamsProfiler(space, x))


class BenchmarkProblem:
    """NAS-Bench-Macro under one budget: the NNI space, the lookup evaluator, the reference and DeepMAD."""

    track = TRACK
    device = "none (tabular lookups; GPU cost modelled)"

    def __init__(self, bench, budget: Budget, cost_model: CostModel | None = None):
        self.bench = bench
        self.budget = budget
        self.cost = cost_model or CostModel()
        self.space, self._flops, self._params = _space_and_profilers()
        self.reference_accuracy = bench.best(flops=budget.flops, params=budget.params).mean_acc

    def flops_params(self, sample: dict) -> tuple[float, float]:
        return float(self._flops.profile(sample)), float(self._params.profile(sample))

    def within_budget(self, sample: dict) -> bool:
        return self.budget.admits(*self.flops_params(sample))

    def evaluate(self, sample: dict) -> Candidate:
        from search_spaces.nas_bench_macro import key_of_sample
        e = self.bench[key_of_sample(sample)]
        return Candidate(e.key, e.mean_acc, e.flops, e.params, self.cost.gpu_seconds(e.flops))

    def deepmad_route(self):
        """What DeepMAD's NNI strategies (``DeepMADOptuna``, ``DeepMADEvolution``) solve over: this NNI space read
        as the core family ``nas-bench-macro`` (:func:`deepmad_nni.nas.route.route_of`)."""
        from ..nas.route import route_of
        return route_of(self.space)

    def deepmad_samples(self, k: int, *, rho=None, beta=None):
        """The ``k`` best distinct networks of the DeepMAD program under the budget, best first."""
        from ..core import solve
        from search_spaces.nas_bench_macro import sample_of_key
        kwargs = {} if beta is None else {"beta": beta}
        result = solve(FAMILY, flops=self.budget.flops, params=self.budget.params, rho=rho, top_k=3 * k, **kwargs)
        keys = distinct_keys(result)
        info = {"status": result.status, "solve_s": round(result.time_s, 3),
                "top1": keys[0] if keys else None, "rho": rho, "beta": beta}
        return [sample_of_key(key) for key in keys[:k]], info


def distinct_keys(result) -> list:
    """Benchmark keys of a solver result's designs, best first, one per distinct network."""
    from ..benchmarks.nas_bench_macro import key_of_architecture
    keys, seen = [], set()
    for design in result.designs:
        key = key_of_architecture(design.architecture)
        if network_of_key(key) not in seen:
            seen.add(network_of_key(key))
            keys.append(key)
    return keys
