"""The continuous relaxation (core/continuous.py), its rounding (core/rounding.py) and the quick solve."""
import math

import numpy as np
import pytest

from core_families import TINY_MBSE, TINY_RESNET
from deepmad_nni.core import Program, get_family, get_preset, solve
from deepmad_nni.core.lagrangian import PrefixTables
from deepmad_nni.core.continuous import ContinuousRelaxation, relaxable, smooth_se
from deepmad_nni.core.local_search import LocalSearch
from deepmad_nni.core.result import FEASIBLE_WITH_GAP, OPTIMAL
from deepmad_nni.core.rounding import _depths_around, _nearest, _violation, relax_and_round, round_point
from deepmad_nni.core.terms import se_width
from deepmad_nni.core.slots import BatchScorer, build_slot_tables, sample_designs
from test_core_solver import budgets, oracle

RELAXABLE = [TINY_RESNET, TINY_MBSE, get_family("resnet-bottleneck-224"), get_family("mbv2-se-224"),
             get_family("mbv2-se-cifar")]


def _point(relaxation, fam, choices):
    """The relaxation's variables at a design (kernels as the relaxation's)."""
    x, c_in = np.zeros(len(relaxation.lo)), fam.in_channels
    for j, (c_out, op, depth, mid) in enumerate(choices):
        x[relaxation.c_var[j]] = math.log(c_out)
        if relaxation.modes[j] == "grid":
            x[relaxation.m_var[j]] = math.log(mid)
        elif relaxation.modes[j] in ("in", "out"):
            x[relaxation.m_var[j]] = math.log(mid / (c_out if relaxation.modes[j] == "out" else c_in))
        if relaxation.d_var[j] is not None:
            x[relaxation.d_var[j]] = depth
        c_in = c_out
    return x


@pytest.mark.parametrize("convention", ["official", "paper"])
@pytest.mark.parametrize("fam", RELAXABLE, ids=lambda f: f.name)
def test_relaxation_equals_exact_scores_at_designs(fam, convention):
    """At a design of the family, the relaxed objective, FLOPs, params and rho are the exact ones."""
    prog = Program.create(fam, flops=1e12, params=1e12, rho=100.0, convention=convention)
    slots = build_slot_tables(prog)
    combos, depths = sample_designs(slots, 40, np.random.default_rng(0))
    checked = 0
    for c, d in zip(combos, depths):
        choices = [(int(sl.widths[sl.co[c[j]]]), fam.slots[j].ops[sl.op[c[j]]], int(d[j]), int(sl.mid[c[j]]))
                   for j, sl in enumerate(slots)]
        relaxation = ContinuousRelaxation(prog, kernels=[op.kernel for _, op, _, _ in choices])
        s = prog.score(fam.architecture(choices))
        x = _point(relaxation, fam, choices)
        objective, cons = relaxation.evaluate(x[None, :])
        (_, _, f, p), _ = relaxation.parts(x[None, :])
        assert objective[0] == pytest.approx(s.objective, rel=1e-9)
        assert f.sum() == pytest.approx(s.flops, rel=1e-12) and p.sum() == pytest.approx(s.params, rel=1e-12)
        prefixes = len(relaxation.ends) if convention == "official" else 1
        rho = max(prog.rho * math.exp(-cons[0, i]) for i in range(prefixes))   # S/n - log(n/rho_0) = log(rho_0/rho)
        assert rho == pytest.approx(s.effectiveness, rel=1e-9)
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("convention", ["official", "paper"])
@pytest.mark.parametrize("fam", [TINY_RESNET, TINY_MBSE], ids=lambda f: f.name)
def test_rounded_designs_feasible_and_multiplier_bound_valid(fam, convention):
    """Against brute force: every rounded, climbed design is feasible with its exact objective (so at most
    the optimum), and the bound of the relaxation's multipliers is at least the optimum."""
    for flops, params, rho in budgets(fam.name):
        prog = Program.create(fam, flops=flops, params=params, rho=rho, convention=convention)
        slots = build_slot_tables(prog)
        ls = LocalSearch(BatchScorer(prog, slots))
        optima, point = relax_and_round(ls)
        best = oracle(prog, 1)
        lam_f, lam_p, mu, n0 = point.lagrange
        assert min(lam_f, lam_p, mu) >= 0 and n0 > 0
        bound = PrefixTables(prog, slots, 48).set(*point.lagrange).root_bound()
        if not best:
            assert not optima
            continue
        assert bound >= best[0] - 1e-9 * abs(best[0])
        for c, d, v in optima:
            s = ls.scorer(c[None, :], d[None, :])
            assert s["feasible"][0] and s["objective"][0] == pytest.approx(v, rel=1e-12)
            assert v <= best[0] + 1e-9 * abs(best[0])


def test_relaxable_families():
    assert relaxable(Program.create(get_family("resnet-bottleneck-224")))
    assert relaxable(Program.create(get_family("mbv2-se-224")))
    assert not relaxable(Program.create(get_family("nas-bench-macro")))   # identity ops


@pytest.mark.parametrize("preset", ["R50", "B0"])
def test_quick_solve_of_a_preset(preset):
    """With no time limit the solve is the quick one: a feasible design, a bound above it, a finite gap."""
    p = get_preset(preset)
    prog = Program.create(get_family(p.family), flops=p.flops, params=p.params, rho=p.rho)
    res = solve(p.family, flops=p.flops, params=p.params, rho=p.rho)
    assert res.status in (OPTIMAL, FEASIBLE_WITH_GAP) and "relaxation" in res.message
    s = prog.score(res.architecture)
    assert prog.feasible(s) and s.objective == pytest.approx(res.objective, rel=1e-12)
    assert res.bound >= res.objective and math.isfinite(res.gap)
    longer = solve(p.family, flops=p.flops, params=p.params, rho=p.rho, time_limit=3.0)
    assert longer.objective >= res.objective - 1e-9 * abs(res.objective)   # a limit only searches further


def test_quick_solve_of_budgets_below_the_family_is_infeasible():
    """Budgets under the family's smallest design are proven infeasible before any search."""
    res = solve("resnet-bottleneck-224", flops=1e6, params=25.6e6, rho=0.3)
    assert res.status == "infeasible" and not res.designs
    assert "flops budget" in res.message and "1.445e+07" in res.message


def test_values_on_the_grid_round_to_themselves_and_their_neighbours():
    """A held width or a depth at its bound rounds the same whatever its float noise: to itself and the
    grid values either side (off the grid, to the two around it)."""
    grid = [32, 40, 48, 64, 80]
    for noise in (1 - 1e-12, 1.0, 1 + 1e-12):
        assert _nearest(grid, 48 * noise) == [1, 2, 3]
        assert _depths_around(16 * noise) == {15, 16, 17}
    assert _nearest(grid, 50) == [2, 3] and _nearest(grid, 20) == [0] and _nearest(grid, 100) == [4]
    assert _depths_around(3.3) == {3, 4}


def test_smooth_se_width_stays_within_one_step_of_the_exact():
    mids = np.arange(8, 4000)
    assert np.all(np.abs(smooth_se(mids.astype(float)) - se_width(mids)) <= 8)


def test_roundings_over_the_limits_come_back_least_infeasible_first_and_a_climb_repairs_them():
    """When no rounding is feasible (here: rho_0 halved under the point), round_point returns the ones that
    exceed the limits least (value -inf), and a climb from the first reaches a feasible design (on this
    family, the optimum that brute force finds)."""
    fam = TINY_RESNET
    flops, params, rho = budgets(fam.name)[1]
    roomy = Program.create(fam, flops=flops, params=params, rho=rho)
    point = ContinuousRelaxation(roomy).solve(ContinuousRelaxation(roomy).start(0.3))
    tight = Program.create(fam, flops=flops, params=params, rho=rho / 2)
    ls = LocalSearch(BatchScorer(tight, build_slot_tables(tight)))
    rounded = round_point(ls, point, count=4)
    out = ls.scorer(np.array([r[0] for r in rounded]), np.array([r[1] for r in rounded]))
    assert len(rounded) == 4 and all(r[2] == -np.inf for r in rounded) and not out["feasible"].any()
    assert np.all(np.diff(_violation(tight, out)) >= 0)
    c, d, v = ls.climb(rounded[0][0], rounded[0][1])
    assert ls.scorer(c[None, :], d[None, :])["feasible"][0]
    assert v == pytest.approx(oracle(tight, 1)[0], rel=1e-12)


def test_climbs_that_meet_share_their_moves_and_return_their_own_arrays():
    """The climb's cache of best moves changes nothing: a reused local search climbs to the design a fresh
    one reaches, and changing a returned design does not change later climbs."""
    fam = TINY_RESNET
    flops, params, rho = budgets(fam.name)[0]
    prog = Program.create(fam, flops=flops, params=params, rho=rho)
    scorer = BatchScorer(prog, build_slot_tables(prog))
    combos, depths = sample_designs(scorer.slots, 12, np.random.default_rng(1))
    shared = LocalSearch(scorer)
    for c, d in zip(combos, depths):
        fresh = LocalSearch(scorer).climb(c, d)
        again = shared.climb(c, d)
        assert np.array_equal(fresh[0], again[0]) and np.array_equal(fresh[1], again[1]) and fresh[2] == again[2]
        again[0][:] = -1   # the caller's copy
        assert np.array_equal(shared.climb(c, d)[0], fresh[0])


def test_quick_solve_is_deterministic():
    p = get_preset("R34")
    first, second = (solve(p.family, flops=p.flops, params=p.params, rho=p.rho) for _ in range(2))
    assert first.architecture == second.architecture and first.objective == second.objective
