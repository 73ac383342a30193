"""MathNAS's core: the one-hot ILP's k best designs against brute force; the contribution estimate against a
known additive metric."""
import itertools
import math

import numpy as np
import pytest

from deepmad_nni.core.block_estimate import (BlockSpace, fit_contributions, free_parameters, one_hot,
                                             random_design, sampled_designs, swap_designs)
from deepmad_nni.core.block_ilp import OneHotConstraint, best_designs, iter_designs


def _instance(seed):
    rng = np.random.default_rng(seed)
    shape = [int(n) for n in rng.integers(1, 5, size=int(rng.integers(2, 5)))]
    scores = [rng.normal(size=n) for n in shape]
    constraints = []
    for c in range(int(rng.integers(0, 3))):
        w = [rng.uniform(0, 10, size=n) for n in shape]
        least, most = sum(x.min() for x in w), sum(x.max() for x in w)
        constraints.append(OneHotConstraint(f"c{c}", tuple(w), ub=float(rng.uniform(least - 2, most))))
    allowed = [rng.random(n) < 0.85 for n in shape] if seed % 3 == 0 else None
    if allowed is not None:
        for a in allowed:
            a[rng.integers(a.size)] = True
    return shape, scores, constraints, allowed


def _brute(shape, scores, constraints, allowed):
    out = []
    for d in itertools.product(*(range(n) for n in shape)):
        if allowed is not None and not all(allowed[i][j] for i, j in enumerate(d)):
            continue
        if all(c.value(d) <= c.ub and c.value(d) >= c.lb for c in constraints):
            out.append((float(sum(s[j] for s, j in zip(scores, d))), d))
    return sorted(out, key=lambda t: -t[0])


def _same_ranking(found, objectives, brute, k):
    assert len(found) == min(k, len(brute))
    assert objectives == pytest.approx([v for v, _ in brute[:len(found)]], abs=1e-6)
    values = [v for v, _ in brute]
    for r, d in enumerate(found):   # the design itself, where no other design ties with it
        gap = min([abs(values[r] - v) for q, v in enumerate(values) if q != r] or [math.inf])
        if gap > 1e-5:
            assert d == brute[r][1]


@pytest.mark.parametrize("seed", range(40))
def test_k_best_equals_brute_force(seed):
    shape, scores, constraints, allowed = _instance(seed)
    brute = _brute(shape, scores, constraints, allowed)
    k = 7
    result = best_designs(scores, constraints=constraints, k=k, allowed=allowed)
    _same_ranking(result.designs, result.objectives, brute, k)
    assert len(set(result.designs)) == len(result.designs)
    for d in result.designs:           # feasibility re-checked on what the solver returned
        assert all(c.holds(d) for c in constraints)
    expected = "infeasible" if not brute else "exhausted" if len(brute) < k else "optimal"
    assert result.status == expected
    lazy = list(itertools.islice(iter_designs(scores, constraints=constraints, allowed=allowed), k))
    _same_ranking([d for d, _ in lazy], [v for _, v in lazy], brute, k)


@pytest.mark.parametrize("seed", range(10))
def test_exclude_cuts_exactly_those_designs(seed):
    shape, scores, constraints, allowed = _instance(seed)
    brute = _brute(shape, scores, constraints, allowed)
    exclude = [d for _, d in brute[:3:2]]     # the 1st and 3rd best
    rest = [(v, d) for v, d in brute if d not in exclude]
    result = best_designs(scores, constraints=constraints, k=3, exclude=exclude, allowed=allowed)
    _same_ranking(result.designs, result.objectives, rest, 3)


def test_infeasible_budget_is_a_status_naming_the_constraint():
    scores = [np.array([1.0, 2.0]), np.array([0.0, 3.0])]
    flops = OneHotConstraint("flops", (np.array([5.0, 9.0]), np.array([4.0, 6.0])), ub=8.0)
    result = best_designs(scores, constraints=[flops], k=2)
    assert result.status == "infeasible" and result.designs == []
    assert "flops needs >= 9" in result.message
    assert list(iter_designs(scores, constraints=[flops])) == []


def test_cardinality_constraint():
    scores = [np.array([0.0, v]) for v in (3.0, 1.0, 2.0, 5.0)]
    pick2 = OneHotConstraint("n_chosen", tuple(np.array([0.0, 1.0]) for _ in scores), lb=2, ub=2)
    result = best_designs(scores, constraints=[pick2], k=6)
    assert result.designs[0] == (1, 0, 0, 1) and len(result.designs) == 6 and result.status == "optimal"
    assert result.objectives == sorted(result.objectives, reverse=True)


@pytest.mark.parametrize("kwargs,match", [
    (dict(scores=[]), "scores must list"), (dict(scores=[[1.0], []]), "scores must list"),
    (dict(scores=[[np.nan]]), "finite"), (dict(scores=[[1.0]], k=0), "k must be"),
    (dict(scores=[[1.0, 2.0]], exclude=[(2,)]), "exclude"),
    (dict(scores=[[1.0, 2.0]], constraints=[OneHotConstraint("b", ([1.0],), ub=1)]), "constraint 'b'"),
    (dict(scores=[[1.0]], constraints=[OneHotConstraint("b", ([1.0],), lb=2, ub=1)]), "lb <= ub"),
    (dict(scores=[[1.0]], time_limit=0), "time_limit")])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        best_designs(**kwargs)


# -- the estimate ---------------------------------------------------------------------------------------
def _additive(space, seed):
    rng = np.random.default_rng(seed)
    truth = [rng.normal(size=n) for n in space.n_choices]
    return truth, lambda d: 10.0 + float(sum(t[j] for t, j in zip(truth, d)))


def _all_designs(space):
    return [d for d in itertools.product(*(range(n) for n in space.n_choices)) if space.feasible(d)]


SPACES = [BlockSpace((3,) * 8), BlockSpace((2, 4, 1, 3)),
          BlockSpace((3, 2, 2, 2, 2, 2), groups=(((1, 2, 3), 1), ((4, 5), 1))),
          BlockSpace((2,) * 5 + (3,), groups=(((0, 1, 2, 3, 4), 2),))]


@pytest.mark.parametrize("space", SPACES, ids=str)
def test_free_parameters_is_the_rank_of_all_designs(space):
    assert free_parameters(space) == np.linalg.matrix_rank(one_hot(space, _all_designs(space)))


@pytest.mark.parametrize("space", SPACES, ids=str)
def test_swap_estimate_recovers_an_additive_metric_exactly(space):
    truth, metric = _additive(space, 1)
    base = random_design(space, np.random.default_rng(0))
    designs = swap_designs(space, base)
    assert len(designs) == free_parameters(space) == len(set(designs))
    fit = fit_contributions(space, designs, [metric(d) for d in designs], reference=base)
    assert fit.determined and all(ok.all() for ok in fit.identified)
    for d in _all_designs(space)[:500]:
        assert fit.predict(d) == pytest.approx(metric(d), abs=1e-9)
    for i, (t, v) in enumerate(zip(truth, fit.values)):   # the contributions themselves (free blocks)
        if i not in space.grouped:
            assert v == pytest.approx(t - t[base[i]], abs=1e-9)
    if space.n_choices == (3,) * 8:
        assert len(designs) == 17


@pytest.mark.parametrize("space", SPACES, ids=str)
def test_least_squares_estimate_recovers_an_additive_metric_exactly(space):
    truth, metric = _additive(space, 2)
    n = free_parameters(space)
    designs = sampled_designs(space, n, np.random.default_rng(3))
    assert len(designs) == n == len(set(designs))
    assert designs == sampled_designs(space, n, np.random.default_rng(3))        # seeded: same designs
    fit = fit_contributions(space, designs, [metric(d) for d in designs])
    assert fit.determined
    for d in _all_designs(space)[:500]:
        assert fit.predict(d) == pytest.approx(metric(d), abs=1e-8)


def test_failed_evaluation_leaves_its_choice_unidentified():
    space = BlockSpace((3, 3))
    base = (0, 0)
    designs = swap_designs(space, base)            # (0,0), (1,0), (2,0), (0,1), (0,2)
    metrics = [1.0, 2.0, None, 3.0, 4.0]
    fit = fit_contributions(space, designs, metrics, reference=base)
    assert not fit.determined and fit.rows == 4
    assert fit.identified[0].tolist() == [True, True, False] and fit.identified[1].all()


def test_allowed_choices_reduce_the_minimum():
    space = BlockSpace((3,) * 8)
    allowed = [np.array([True, True, False])] + [np.ones(3, bool)] * 7
    assert free_parameters(space, allowed) == 16
    assert len(swap_designs(space, (0,) * 8, allowed)) == 16
    with pytest.raises(ValueError, match="base must be"):
        swap_designs(space, (2,) + (0,) * 7, allowed)
