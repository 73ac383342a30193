"""The local search scores neighbours exactly and stops at a true local optimum of its neighbourhoods."""
import time

import numpy as np
import pytest
from core_families import SMALL_FAMILIES

from deepmad_nni.core import Program, get_family, get_preset
from deepmad_nni.core.evolution import evolve
from deepmad_nni.core.local_search import LocalSearch, climb_with_restarts
from deepmad_nni.core.slots import BatchScorer, all_designs, build_slot_tables


def _full_rows(combos, depths, cols):
    size = max(len(c) for c, _ in cols.values())
    c_all, d_all = np.repeat(combos[None, :], size, 0), np.repeat(depths[None, :], size, 0)
    for j, (c, d) in cols.items():
        c_all[:, j], d_all[:, j] = c, d
    return c_all, d_all


@pytest.mark.parametrize("family", SMALL_FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("convention", ["official", "paper"])
def test_every_neighbour_is_scored_like_the_full_scorer(family, convention):
    flops = np.median([Program.create(family).score(a).flops for a in family.enumerate()])
    prog = Program.create(family, flops=flops, rho=family.default_rho, convention=convention)
    scorer = BatchScorer(prog, build_slot_tables(prog))
    combos, depths = all_designs(scorer.slots)
    ls = LocalSearch(scorer)
    rng = np.random.default_rng(0)
    for r in rng.choice(len(combos), 5, replace=False):
        c, d = combos[r], depths[r]
        for name, build in ls._neighbourhoods(c, d):
            cols = build()
            vals = ls.values(c, d, cols)
            c_all, d_all = _full_rows(c, d, cols)
            ok = np.ones(len(c_all), bool)
            for j, (cc, dd) in cols.items():
                ok &= ls.slots[j].depth_ok(cc, dd)
            out = scorer(np.maximum(c_all[ok], 0), d_all[ok])
            want = np.full(len(c_all), -np.inf)
            want[ok] = np.where(out["feasible"], out["objective"], -np.inf)
            np.testing.assert_allclose(vals, want, rtol=1e-12, err_msg=f"{name} neighbourhood")


@pytest.mark.parametrize("family", SMALL_FAMILIES, ids=lambda f: f.name)
def test_climb_ends_at_a_feasible_local_optimum(family):
    flops = np.median([Program.create(family).score(a).flops for a in family.enumerate()])
    prog = Program.create(family, flops=flops, rho=family.default_rho)
    scorer = BatchScorer(prog, build_slot_tables(prog))
    combos, depths = all_designs(scorer.slots)
    out = scorer(combos, depths)
    start = int(np.flatnonzero(out["feasible"])[np.argmin(out["objective"][out["feasible"]])])  # worst feasible
    ls = LocalSearch(scorer)
    c, d, v = ls.climb(combos[start], depths[start])
    again = scorer(c[None], d[None])
    assert again["feasible"][0] and again["objective"][0] == pytest.approx(v, rel=1e-12)
    assert v > out["objective"][start]
    for _, build in ls._neighbourhoods(c, d):   # no neighbour is better
        assert ls.values(c, d, build()).max() <= v * (1 + 1e-9)


def test_restarts_on_a_preset_return_feasible_designs_that_beat_their_start():
    p = get_preset("MB")
    prog = Program.create(get_family(p.family), flops=p.flops, params=p.params, rho=p.rho)
    scorer = BatchScorer(prog, build_slot_tables(prog))
    evo = evolve(prog, evaluations=3000, seed=0, slots=scorer.slots)
    optima, scored = climb_with_restarts(scorer, (evo.combos, evo.depths), deadline=time.perf_counter() + 3)
    assert optima[0][2] >= evo.objective and scored > 0
    for c, d, v in optima:
        out = scorer(c[None], d[None])
        assert out["feasible"][0] and out["objective"][0] == pytest.approx(v, rel=1e-12)
