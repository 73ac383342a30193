"""The hub-space route's solver (deepmad_nni.nas.solver) against brute force on a space small enough to enumerate.

The space: a stem (width, kernel), a Repeat of 1-3 stride-2-first blocks (width, per-block kernel), a Repeat of
1-2 blocks (width), 32x32 inputs: 1728 samples, three stages, Q over two Repeat depths.  ``enumerate_limit=0``
sends it through the large-space route (dual, search, branch and bound) so that route is checked exactly.
"""
import functools
import itertools
import math
import random
import warnings

import pytest

torch = pytest.importorskip("torch")
nni = pytest.importorskip("nni")

from nni.nas.nn.pytorch import ModelSpace, MutableBatchNorm2d, MutableConv2d, MutableLinear, Repeat  # noqa: E402
from torch import nn  # noqa: E402

from deepmad_nni.core.result import INFEASIBLE, OPTIMAL, STATUSES, DesignResult  # noqa: E402
from deepmad_nni.core.score import Score  # noqa: E402
from deepmad_nni.nas import solver  # noqa: E402
from deepmad_nni.nas.reader import read_space  # noqa: E402
from deepmad_nni.nas.solver import SpaceDesign, rho_range, solve_space  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")


class _Block(nn.Module):
    def __init__(self, c_in, c_out, stride, kernel):
        super().__init__()
        self.conv = MutableConv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False)
        self.bn = MutableBatchNorm2d(c_out)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class SmallSpace(ModelSpace):
    def __init__(self):
        super().__init__()
        w1, k1 = nni.choice("w1", [8, 16]), nni.choice("k1", [3, 5])
        w2, w3 = nni.choice("w2", [16, 24, 32]), nni.choice("w3", [32, 48, 64])
        self.stem = _Block(3, w1, 1, k1)
        self.s2 = Repeat(lambda i: _Block(w1 if i == 0 else w2, w2, 2 if i == 0 else 1, nni.choice(f"k2_{i}", [3, 5])),
                         nni.choice("d2", [1, 2, 3]))
        self.s3 = Repeat(lambda i: _Block(w2 if i == 0 else w3, w3, 2 if i == 0 else 1, 3),
                         nni.choice("d3", [1, 2]))
        self.fc = MutableLinear(w3, 10)

    def forward(self, x):
        return self.fc(self.s3(self.s2(self.stem(x))).mean((2, 3)))


@functools.lru_cache(maxsize=None)
def small():
    """(space, description, every sample's Score) of the small space, built once."""
    space = SmallSpace()
    desc = read_space(space, (1, 3, 32, 32))
    labels = list(desc.mutables)
    scored = []
    for combo in itertools.product(*(desc.mutables[k].values for k in labels)):
        sample = dict(zip(labels, combo))
        scored.append((sample, desc.evaluate(sample)))
    return space, desc, scored


def brute_force(flops=None, params=None, rho=None):
    """The best objective of a sample within the limits (None if none) by enumeration."""
    ok = [s.objective for _, s in small()[2] if (flops is None or s.flops <= flops)
          and (params is None or s.params <= params) and (rho is None or s.effectiveness <= rho)]
    return max(ok) if ok else None


def reach(flops=None, params=None):
    """Enumerated (smallest rho, rho of the best sample) within the budgets."""
    fit = [s for _, s in small()[2] if (flops is None or s.flops <= flops) and (params is None or s.params <= params)]
    best = max(range(len(fit)), key=lambda i: (fit[i].objective, -i))
    return min(s.effectiveness for s in fit), fit[best].effectiveness


BUDGETS = [dict(flops=1.5e6, rho=0.03), dict(flops=3e6, rho=0.04), dict(flops=6e6, params=4e4, rho=0.05),
           dict(params=2e4, rho=0.035), dict(flops=12e6, rho=1.0)]


def check_feasible(result, desc, flops=None, params=None, rho=None):
    for d in result.designs:
        assert isinstance(d, SpaceDesign) and isinstance(d.score, Score) and d.architecture is None
        e = desc.evaluate(d.sample)
        assert e == d.score                                   # the reader's own figures
        assert (flops is None or e.flops <= flops) and (params is None or e.params <= params)
        assert e.effectiveness <= rho


def test_the_space_is_what_the_tests_need():
    _, desc, scored = small()
    assert desc.size() == len(scored) == 1728 and desc.num_stages == 3
    assert len({s.q for _, s in scored}) > 1                  # Q varies (two Repeat depths)


@pytest.mark.parametrize("budget", BUDGETS)
def test_bound_holds_and_designs_are_feasible(budget):
    _, desc, _ = small()
    optimum = brute_force(**budget)
    searched = solve_space(desc, top_k=3, enumerate_limit=0, **budget)     # dual + search + branch and bound
    enumerated = solve_space(desc, top_k=3, **budget)
    assert isinstance(searched, DesignResult) and searched.status in STATUSES
    assert enumerated.status == OPTIMAL and enumerated.objective == pytest.approx(optimum, rel=1e-12)
    assert enumerated.bound == enumerated.objective and enumerated.gap == 0
    assert searched.bound >= optimum - 1e-9 * abs(optimum)     # proven upper bound of the constrained optimum
    assert searched.objective <= optimum + 1e-9 * abs(optimum)
    assert searched.objective >= optimum - 0.01 * abs(optimum)
    for result in (searched, enumerated):
        check_feasible(result, desc, **budget)
        signatures = {desc.signature(d.sample) for d in result.designs}
        assert len(signatures) == len(result.designs)          # distinct networks
        objectives = [d.score.objective for d in result.designs]
        assert objectives == sorted(objectives, reverse=True) and result.objective == objectives[0]
    assert searched.to_dict()["stages"] == searched.designs[0].sample


def test_lagrangian_maximum_is_exact_on_the_small_space():
    """max_x sum_name w[name] * name(x) by variable elimination equals brute force, for random weights (E the
    entropy, Q = -beta Q, F, P, T = sum of log w, N = number of main convs)."""
    _, desc, scored = small()
    comp = solver._compiled(desc, (1.0, 1.0, 8.0), 10.0, "official")
    model, lag = comp.model, comp.lagrangian()
    assert lag.exact == {"E": True, "Q": True}
    figures = [model.figures(x) for x in itertools.product(*(range(n) for n in model.sizes))]
    assert [f[0] for f in figures] == [s.objective for _, s in scored]      # compiled scoring = the reader's
    rng = random.Random(3)
    for _ in range(5):
        w = {"E": 1.0, "Q": 1.0, "F": -rng.uniform(0, 1e-4), "P": -rng.uniform(0, 1e-2), "T": rng.uniform(0, 20),
             "N": -rng.uniform(0, 50)}
        value, x = lag.maximise(w)
        weighted = [f[0] + w["F"] * f[2] + w["P"] * f[3] + w["T"] * f[4] + w["N"] * f[5] for f in figures]
        assert value == pytest.approx(max(weighted), rel=1e-9)
        f = model.figures(x)
        assert f[0] + w["F"] * f[2] + w["P"] * f[3] + w["T"] * f[4] + w["N"] * f[5] == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("route", ["enumerated", "searched"])
def test_quick_solve_is_deterministic(route):
    _, desc, _ = small()
    limit = solver.ENUMERATE_LIMIT if route == "enumerated" else 0
    first = solve_space(desc, flops=4e6, rho=0.045, top_k=2, enumerate_limit=limit)
    fresh = read_space(SmallSpace(), (1, 3, 32, 32))          # nothing cached
    again = solve_space(fresh, flops=4e6, rho=0.045, top_k=2, enumerate_limit=limit)
    assert [d.sample for d in first.designs] == [d.sample for d in again.designs]
    assert (first.bound, first.nodes, first.status) == (again.bound, again.nodes, again.status)


def test_rho_range_equals_enumeration():
    _, desc, _ = small()
    for budget in (dict(flops=3e6), dict(flops=6e6, params=4e4), {}):
        assert rho_range(desc, **budget) == reach(**budget)


def test_rho_range_by_search_on_the_large_route(monkeypatch):
    _, desc, _ = small()
    monkeypatch.setattr(solver, "ENUMERATE_LIMIT", 0)
    low, high = rho_range(desc, flops=3e6)
    true_low, true_high = reach(flops=3e6)
    assert low >= true_low - 1e-12 and low == pytest.approx(true_low, rel=0.02)
    assert high == pytest.approx(true_high, rel=0.05)
    assert rho_range(desc, flops=3e6) == (low, high)            # deterministic


@pytest.mark.parametrize("limit", [solver.ENUMERATE_LIMIT, 0])
def test_infeasible_below_the_reachable_rho_and_a_design_above(limit):
    _, desc, _ = small()
    low, high = reach(flops=3e6)
    result = solve_space(desc, flops=3e6, rho=0.5 * low, enumerate_limit=limit)
    assert result.status == INFEASIBLE and not result.designs and not result.success
    assert f"{low:.4g}" in result.message and "choose rho_0 >=" in result.message and "3M FLOPs" in result.message
    inside = math.sqrt(low * high)
    result = solve_space(desc, flops=3e6, rho=inside, enumerate_limit=limit)
    assert result.designs and result.designs[0].score.effectiveness <= inside
    check_feasible(result, desc, flops=3e6, rho=inside)


def test_budgets_below_the_smallest_network():
    _, desc, scored = small()
    smallest = min(s.flops for _, s in scored)
    for limit in (solver.ENUMERATE_LIMIT, 0):
        result = solve_space(desc, flops=0.9 * smallest, rho=1.0, enumerate_limit=limit)
        assert result.status == INFEASIBLE and "smallest network" in result.message
    with pytest.raises(ValueError, match="FLOPs"):
        rho_range(desc, flops=0.9 * smallest)
    with pytest.raises(ValueError, match="params"):
        rho_range(desc, params=10.0)


def test_bad_input():
    _, desc, _ = small()
    for kwargs, match in [(dict(rho=0), "rho"), (dict(rho=0.5, flops=-1), "flops"), (dict(rho=0.5, top_k=0), "top_k"),
                          (dict(rho=0.5, seed=None), "seed"), (dict(rho=0.5, alpha=(1, 8)), "alpha"),
                          (dict(rho=0.5, convention="tinynas"), "convention"), (dict(rho=0.5, time_limit=0), "time")]:
        with pytest.raises(ValueError, match=match):
            solve_space(desc, **kwargs)
    with pytest.raises(TypeError):
        solve_space(desc, flops=1e6)                            # rho_0 is required


def test_shufflenet_at_rho_half_is_proven_infeasible_with_its_range():
    from nni.nas.hub.pytorch import ShuffleNetSpace
    desc = read_space(ShuffleNetSpace(), (1, 3, 224, 224))
    result = solve_space(desc, flops=300e6, rho=0.5)
    assert result.status == INFEASIBLE and "No sample has rho <= 0.5 within 300M FLOPs" in result.message
    assert "choose rho_0 >=" in result.message and "proven" in result.message
