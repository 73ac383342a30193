"""The solver against brute force (independent per-architecture scoring) on families small enough to enumerate."""
import math
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest

from core_families import SMALL_FAMILIES, TINY_MBSE, TINY_RESNET
from deepmad_nni.core import Program, get_family, get_preset, solve
from deepmad_nni.core.plan import BOX_PLAN, EVOLUTION, TIMED_PLAN
from deepmad_nni.core.runner import run_plan
from deepmad_nni.core.result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL

FAMILIES = {f.name: f for f in SMALL_FAMILIES}
FAMILIES["nas-bench-macro"] = get_family("nas-bench-macro")


@lru_cache(maxsize=None)
def all_scored(name, convention):
    """Every architecture of the family with its score (built and scored one by one)."""
    fam = FAMILIES[name]
    prog = Program.create(fam, convention=convention)
    return [(a, prog.score(a)) for a in fam.enumerate()]


def oracle(prog, top_k):
    seen, out = set(), []
    for arch, s in sorted(all_scored(prog.family.name, prog.convention), key=lambda t: -t[1].objective):
        if prog.feasible(s) and arch.canonical() not in seen:
            seen.add(arch.canonical())
            out.append(s.objective)
            if len(out) == top_k:
                break
    return out


def budgets(name):
    """Three budgets between the family's smallest and largest designs (tight, medium, loose)."""
    scores = [s for _, s in all_scored(name, "official")]
    f = np.array([s.flops for s in scores])
    p = np.array([s.params for s in scores])
    return [(float(np.quantile(f, q)), float(np.quantile(p, q2)), rho)
            for q, q2, rho in ((0.1, 0.2, 0.3), (0.5, 0.5, 0.5), (0.9, 0.7, 1.0))]


@pytest.mark.parametrize("convention", ["official", "paper"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_branch_and_bound_equals_brute_force(name, convention):
    fam = FAMILIES[name]
    for flops, params, rho in budgets(name):
        prog = Program.create(fam, flops=flops, params=params, rho=rho, convention=convention)
        expected = oracle(prog, 3)
        for method in ("branch-and-bound", "enumerate"):
            res = solve(fam, flops=flops, params=params, rho=rho, convention=convention, top_k=3,
                        method=method, time_limit=120)
            got = [d.score.objective for d in res.designs]
            assert np.allclose(got, expected, rtol=1e-9), (method, flops, params, rho)
            assert res.status == (OPTIMAL if expected else INFEASIBLE)
            for d in res.designs:   # every returned design re-checked against the budgets
                s = prog.score(d.architecture)
                assert prog.feasible(s) and s.flops <= flops and s.params <= params and s.effectiveness <= rho
                assert math.isclose(s.objective, d.score.objective, rel_tol=1e-12)
            assert len({d.architecture.canonical() for d in res.designs}) == len(res.designs)


def test_custom_alpha_and_beta_match_brute_force():
    fam = TINY_MBSE
    prog = Program.create(fam, flops=20e6, params=0.2e6, rho=0.6, alpha=(0.5, 2.0, 3.0), beta=50.0)
    best = max((s.objective for a, s in ((a, prog.score(a)) for a in fam.enumerate()) if prog.feasible(s)))
    res = solve(fam, flops=20e6, params=0.2e6, rho=0.6, alpha=(0.5, 2.0, 3.0), beta=50.0,
                method="branch-and-bound", time_limit=60)
    assert res.status == OPTIMAL and math.isclose(res.objective, best, rel_tol=1e-9)


def test_infeasible_budget_names_the_smallest_design():
    res = solve(TINY_RESNET, flops=1e3, params=1e9, method="branch-and-bound")
    assert res.status == INFEASIBLE and not res.designs
    smallest = min(s.flops for _, s in all_scored("tiny-resnet", "official"))
    assert f"{smallest:.4g}" in res.message and "flops budget" in res.message


def test_infeasible_rho_says_so():
    res = solve(TINY_RESNET, rho=1e-3, method="branch-and-bound")
    assert res.status == INFEASIBLE and "rho" in res.message


def test_limit_reached_without_a_design_reports_a_bound():
    prog = Program.create(TINY_RESNET, flops=30e6, params=1e6, rho=0.5)
    res = run_plan(prog, BOX_PLAN, time_limit=10.0, node_limit=1)
    assert res.status == LIMIT_REACHED and not res.designs
    assert res.bound >= oracle(prog, 1)[0] * (1 - 1e-9)


def test_gap_bound_is_valid_when_stopped_early():
    prog = Program.create(TINY_RESNET, flops=30e6, params=1e6, rho=0.5)
    opt = oracle(prog, 1)[0]
    res = run_plan(prog, BOX_PLAN, time_limit=10.0, node_limit=3)
    if res.status == LIMIT_REACHED:   # no leaf reached within 3 nodes
        res = run_plan(prog, BOX_PLAN, time_limit=10.0, node_limit=40)
    assert res.status in (FEASIBLE_WITH_GAP, OPTIMAL)
    assert res.bound >= opt * (1 - 1e-9) and opt >= res.objective * (1 - 1e-12)
    assert res.gap == pytest.approx(max(0.0, res.bound - res.objective))


def test_preset_within_time_limit_reports_feasible_design_and_gap():
    p = get_preset("R50")
    res = solve(p.family, flops=p.flops, params=p.params, rho=p.rho, time_limit=1.5)
    assert res.status in (FEASIBLE_WITH_GAP, OPTIMAL)
    assert res.flops <= p.flops and res.params <= p.params and res.effectiveness <= p.rho
    assert res.bound >= res.objective and res.time_s < 5


def test_same_seed_same_design_when_time_is_not_the_limit():
    p = get_preset("B0")
    prog = Program.create(get_family(p.family), flops=p.flops, params=p.params, rho=p.rho)
    plan = TIMED_PLAN.with_settings("evolve-and-climb", evolution=replace(EVOLUTION, evaluations=20_000),
                                    restart_evaluations=20_000, starts=2)
    runs = [run_plan(prog, plan, node_limit=200, time_limit=600, seed=3) for _ in range(2)]
    assert runs[0].architecture == runs[1].architecture and runs[0].bound == runs[1].bound


@pytest.mark.parametrize("convention", ["official", "paper"])
@pytest.mark.parametrize("name", [f.name for f in SMALL_FAMILIES])
def test_depth_spread_bound_is_at_least_the_optimum(name, convention):
    from deepmad_nni.core.lagrangian import PrefixTables
    from deepmad_nni.core.multipliers import fit_multipliers
    from deepmad_nni.core.slots import build_slot_tables
    from deepmad_nni.core.spread_bound import depth_spread_bound
    fit, spread = (next(s.settings for s in TIMED_PLAN.stages if s.name == n) for n in ("fit-multipliers", "spread-bound"))
    fam = FAMILIES[name]
    for beta in (10.0, 300.0):   # a large beta makes Q matter
        for flops, params, rho in budgets(name):
            prog = Program.create(fam, flops=flops, params=params, rho=rho, beta=beta, convention=convention)
            feasible = [s.entropy - beta * s.q for _, s in all_scored(name, convention) if prog.feasible(s)]
            relax = fit_multipliers(PrefixTables(prog, build_slot_tables(prog), 12), prog, replace(fit, evaluations=30))
            bound = depth_spread_bound(relax, prog, spread, deadline=math.inf)
            if feasible:
                assert bound >= max(feasible) - 1e-9 * abs(max(feasible))


def test_counted_slots_follow_the_official_q():
    from deepmad_nni.core.rules import counted_slots
    assert counted_slots(get_family("resnet-bottleneck-224"), "official") == [False, False, False, True, True, True]
    assert counted_slots(get_family("mbv2-se-224"), "official") == [False, True, True, True, True, True, False]
    assert counted_slots(get_family("nas-bench-macro"), "official") is None   # skip or not: per design


def test_slot_tables_are_kept_per_family_convention_and_alpha_and_cannot_be_changed():
    from deepmad_nni.core.slots import build_slot_tables
    fam = TINY_RESNET
    first = build_slot_tables(Program.create(fam, flops=1e9, rho=0.5))
    again = build_slot_tables(Program.create(fam, flops=2e9, rho=0.3))      # budgets do not matter
    assert all(a is b for a, b in zip(first, again))
    other_alpha = build_slot_tables(Program.create(fam, alpha=tuple(2.0 * a for a in Program.create(fam).alpha)))
    assert not np.array_equal(other_alpha[-1].delta, first[-1].delta)
    paper = build_slot_tables(Program.create(fam, convention="paper"))
    assert paper[0] is not first[0]
    with pytest.raises(ValueError, match="read-only"):
        first[0].first[2][0] = 0.0


def test_local_searches_on_one_family_share_its_slot_lookups_and_features_match_slot_by_slot():
    from deepmad_nni.core.local_search import LocalSearch
    from deepmad_nni.core.slots import BatchScorer, all_designs, build_slot_tables
    prog = Program.create(TINY_RESNET, flops=1e9, rho=0.5)
    scorer = BatchScorer(prog, build_slot_tables(prog))
    one, two = LocalSearch(scorer), LocalSearch(BatchScorer(Program.create(TINY_RESNET, flops=2e9, rho=0.4),
                                                            build_slot_tables(prog)))
    assert all(a is b for a, b in zip(one.slots, two.slots))
    with pytest.raises(ValueError, match="read-only"):
        one.slots[1].moves(0)[0][0] = 0
    combos, depths = all_designs(scorer.slots)
    flat = scorer.features(combos, depths)
    by_slot = [scorer.column(j, combos[:, j], depths[:, j]) for j in range(len(scorer.slots))]
    for k, feature in enumerate(flat):
        assert np.array_equal(feature, np.stack([c[k] for c in by_slot], axis=1))
