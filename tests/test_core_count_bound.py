"""The count-exact Lagrangian bounds (core/count_bound.py) against every design of small families."""
import math
import time
from dataclasses import replace

import numpy as np
import pytest

from core_families import SMALL_FAMILIES, TINY_MBSE, TINY_RESNET
from deepmad_nni.core import Program
from deepmad_nni.core.bruteforce import solve_brute_force
from deepmad_nni.core import branch_and_bound
from deepmad_nni.core.count_bound import count_bound
from deepmad_nni.core.count_tables import CountNodeBounds, CountTables, depth_count_applies
from deepmad_nni.core.incumbents import Incumbents, min_prefix_costs
from deepmad_nni.core.family import Family, Op, Slot
from deepmad_nni.core.plan import TIMED_PLAN
from deepmad_nni.core.runner import count_to_go_on, run_plan
from deepmad_nni.core.rules import counted_slots
from deepmad_nni.core.slots import BatchScorer, all_designs, build_slot_tables

#: TINY_RESNET with a fourth bottleneck slot: Q takes the last two depths (the first two are left out), so the
#: layer count does not give their sum
TINY_RESNET4 = Family("tiny-resnet-4", TINY_RESNET.slots + (
    Slot(1, (64,), (Op("bottleneck", 3, mid_from_grid=True),), (1, 2), (16, 32)),), resolution=32, num_classes=10,
    default_rho=0.5)
FAMILIES = SMALL_FAMILIES + (TINY_RESNET4,)


def _programs(fam, convention):
    """Two budgets of ``fam`` (tight and medium), with every design's figures, layer count and Q depth sum."""
    base = Program.create(fam, convention=convention)
    slots = build_slot_tables(base)
    combos, depths = all_designs(slots)
    free = BatchScorer(base, slots)(combos, depths)
    counted = counted_slots(fam, convention)
    for q in (0.3, 0.6):
        prog = Program.create(fam, flops=float(np.quantile(free["flops"], q)),
                              params=float(np.quantile(free["params"], q)),
                              rho=float(np.quantile(free["rho"], q + 0.2)), convention=convention)
        scorer = BatchScorer(prog, slots)
        layers = np.rint(scorer.features(combos, depths)[1].sum(axis=1)).astype(np.int64)
        depth_sum = depths[:, np.array(counted, bool)].sum(axis=1) if counted is not None else None
        yield prog, slots, scorer(combos, depths), {"layers": layers, "depths": depth_sum}


def _counts(fam, convention):
    return ("layers", "depths") if counted_slots(fam, convention) is not None else ("layers",)


@pytest.mark.parametrize("convention", ["official", "paper"])
@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_each_count_bound_holds_every_feasible_design_with_that_count(fam, convention):
    """At random multipliers (a prefix's mu too) and lines under Q, no feasible design beats the bound of its
    count (its layers, or the sum of Q's depths)."""
    rng = np.random.default_rng(14)
    for prog, slots, out, of in _programs(fam, convention):
        feasible = out["feasible"]
        scale = float(np.abs(out["objective"]).max())
        for count in _counts(fam, convention):
            tables = CountTables(prog, slots, 12, count)
            at = np.searchsorted(tables.counts[-1], of[count])
            assert (tables.counts[-1][at] == of[count]).all()   # every design's count is one of the tables'
            for k in range(6):
                lam_f, lam_p = (scale / b * math.exp(rng.uniform(-4, 1)) for b in (prog.flops, prog.params))
                mus = scale / 100 * np.exp(rng.uniform(-4, 1, len(tables.rho_ends))) * (k > 0)
                spread = (None, 0.5, 2.0, 3.0)[k % 4]   # a line under Q (where the tables know the depth sum)
                n0 = float(rng.uniform(2, 40)) if count == "depths" else None
                bounds = tables.set(lam_f, lam_p, mus, spread, n0).bounds()
                assert (out["objective"][feasible] <= bounds[at[feasible]] + 1e-9 * scale).all(), (count, k)


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_the_fitted_count_bounds_contain_the_optimum(fam):
    """Parts by the last slot and the prefix count (the plan's), or by the whole network's count alone
    (``max_parts=0``): the bound holds the optimum; the parts' is at most the counts' alone."""
    settings = next(s.settings for s in TIMED_PLAN.stages if s.name == "count-bound")
    for prog, slots, _, _ in _programs(fam, "official"):
        truth = solve_brute_force(prog)
        fmin, pmin = min_prefix_costs(slots)
        for count in _counts(fam, "official"):
            for max_parts in (0, settings.max_parts):
                tables = CountTables(prog, slots, 12, count)
                bound, _ = count_bound(tables, prog, replace(settings, max_parts=max_parts), fmin, pmin,
                                       start=(0.0, 0.0, 0.0, 10.0), floor=-math.inf, deadline=time.perf_counter() + 30)
                if truth.designs:
                    assert bound >= truth.objective - 1e-9 * abs(truth.objective), (count, max_parts)


def test_the_depth_sum_follows_the_layer_count_where_it_can():
    """TINY_MBSE: every MBConv block adds 3 counted layers, so the sum of Q's depths is (n - 2) / 3; in
    TINY_RESNET4 Q leaves out the first two bottleneck slots, whose depths vary: only the depth count knows it."""
    prog = Program.create(TINY_MBSE)
    tables = CountTables(prog, build_slot_tables(prog), 12)
    np.testing.assert_array_equal(tables.depth_sum, (tables.counts[-1] - 2) / 3)
    prog = Program.create(TINY_RESNET4)
    slots = build_slot_tables(prog)
    assert CountTables(prog, slots, 12).depth_sum is None and depth_count_applies(prog)
    depths = CountTables(prog, slots, 12, "depths")
    np.testing.assert_array_equal(depths.depth_sum, depths.counts[-1])
    assert len(depths.rho_ends) == 1   # the depth count prices the whole network's rho only (at a tangent)


def test_bad_multipliers_and_counts_are_refused():
    prog = Program.create(TINY_MBSE)
    slots = build_slot_tables(prog)
    tables = CountTables(prog, slots, 12)
    assert len(tables.rho_ends) == TINY_MBSE.num_stages()
    with pytest.raises(ValueError, match="mus must hold"):
        tables.set(0.0, 0.0, [0.0])
    with pytest.raises(ValueError, match="n0 must be given"):
        tables.set(0.0, 0.0, [0.0] * len(tables.rho_ends), n0=5.0)
    with pytest.raises(ValueError, match="count must be one of"):
        CountTables(prog, slots, 12, "blocks")


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_the_branch_and_bound_on_count_node_bounds_finds_the_optimum(fam):
    """The exact search on node bounds from fitted and from random multiplier sets (one to three of them)
    closes on the brute-force optimum: no node bound ever cuts it off."""
    rng = np.random.default_rng(7)
    settings = next(s.settings for s in TIMED_PLAN.stages if s.name == "count-bound")
    for prog, slots, out, _ in _programs(fam, "official"):
        truth = solve_brute_force(prog)
        scale = float(np.abs(out["objective"]).max())
        fmin, pmin = min_prefix_costs(slots)
        for count in _counts(fam, "official"):
            tables = CountTables(prog, slots, 12, count)
            _, fitted = count_bound(tables, prog, settings, fmin, pmin, start=(0.0, 0.0, 0.0, 10.0), floor=-math.inf,
                                    deadline=time.perf_counter() + 30)
            drawn = [(scale / prog.flops * math.exp(rng.uniform(-4, 1)), scale / prog.params * math.exp(rng.uniform(-4, 1)),
                      [0.0] * (len(tables.rho_ends) - 1) + [scale / 100 * math.exp(rng.uniform(-4, 1))],
                      float(rng.choice([2.0, 3.0])), float(rng.uniform(2, 40)) if count == "depths" else None)
                     for _ in range(3)]
            for thetas in (fitted or drawn[:1], drawn):
                best = Incumbents(prog, slots, 1)
                outcome = branch_and_bound.search(prog, BatchScorer(prog, slots), best, CountNodeBounds(tables, thetas),
                                                  math.inf, fmin, pmin, deadline=math.inf, node_limit=None)
                assert outcome.closed
                got = best.designs()
                assert (got[0].score.objective if got else None) == (
                    pytest.approx(truth.objective, rel=1e-9) if truth.designs else None), (count, len(thetas))


def test_count_tables_of_one_family_share_their_slot_moves_across_budgets():
    one = Program.create(TINY_RESNET, flops=1e9, rho=0.5)
    other = Program.create(TINY_RESNET, flops=3e8, params=1e6, rho=0.3)
    a = CountTables(one, build_slot_tables(one), 4, "layers")
    b = CountTables(other, build_slot_tables(other), 4, "layers")
    assert all(x is y for x, y in zip(a.moves, b.moves))
    with pytest.raises(ValueError, match="read-only"):
        a.moves[-1].t[0] = 0.0


def test_the_count_of_the_smallest_bound_its_brief_fit_left_unfinished_goes_on():
    assert count_to_go_on([(10.0, True), (5.0, True)], -math.inf) == 1
    assert count_to_go_on([(10.0, True), (5.0, False)], -math.inf) == 0   # the leader's fit ended by itself
    assert count_to_go_on([(10.0, False), (5.0, False)], -math.inf) is None
    assert count_to_go_on([(10.0, True), (5.0, True)], 5.0) is None       # a bound reaches the incumbent


def test_with_both_counts_the_stage_fits_each_and_the_solve_stays_exact():
    """TINY_RESNET4 needs the depth count besides the layer count: the stage fits both, and the timed solve
    closes on the brute-force optimum."""
    for prog, *_ in _programs(TINY_RESNET4, "official"):
        truth = solve_brute_force(prog)
        said = []
        res = run_plan(prog, TIMED_PLAN.without("evolution", "box-search"), time_limit=5.0, progress=said.append)
        fits = [line.split(":")[0] for line in said if line.startswith("count bound")]
        assert fits[:2] == ["count bound (depths)", "count bound (layers)"]
        assert len(fits) <= 4   # then the one of the smaller bound goes on, and the other if time is left
        assert res.objective == pytest.approx(truth.objective, rel=1e-9) and res.bound >= truth.objective - 1e-9
