"""The local search scores neighbours exactly and stops at a true local optimum of its neighbourhoods."""
import time
from dataclasses import replace

import numpy as np
import pytest
from core_families import SMALL_FAMILIES

from deepmad_nni.core import Program, get_family, get_preset
from deepmad_nni.core.evolution import evolve
from deepmad_nni.core.local_search import LocalSearch, climb_with_restarts
from deepmad_nni.core.plan import TIMED_PLAN
from deepmad_nni.core.slots import BatchScorer, all_designs, build_slot_tables


def _full_rows(combos, depths, parts):
    """Every neighbour of the parts as full (combos, depths) rows, and whether each row is valid."""
    rows_c, rows_d, valid = [], [], []
    for part in map(LocalSearch.rows, parts):
        size = len(next(iter(part.values()))[0])
        c_all, d_all = np.repeat(combos[None, :], size, 0), np.repeat(depths[None, :], size, 0)
        for j, (c, d) in part.items():
            c_all[:, j], d_all[:, j] = c, d
        rows_c.append(c_all)
        rows_d.append(d_all)
        valid.append(c_all.min(axis=1) >= 0)
    return np.concatenate(rows_c), np.concatenate(rows_d), np.concatenate(valid)


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
            parts = build()
            vals = ls.values(c, d, parts)
            c_all, d_all, ok = _full_rows(c, d, parts)
            for j in range(len(c)):   # depths the op allows
                ok &= ls.slots[j].depth_ok(c_all[:, j], d_all[:, j])
            out = scorer(np.maximum(c_all[ok], 0), d_all[ok])
            want = np.full(len(c_all), -np.inf)
            want[ok] = np.where(out["feasible"], out["objective"], -np.inf)
            np.testing.assert_allclose(vals, want, rtol=1e-12, err_msg=f"{name} neighbourhood")


@pytest.mark.parametrize("family", SMALL_FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize("budgeted", [True, False], ids=["flops-budget", "rho-only"])
def test_climb_ends_at_a_feasible_local_optimum(family, budgeted):
    flops = np.median([Program.create(family).score(a).flops for a in family.enumerate()]) if budgeted else None
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


def test_restarts_on_a_preset_return_feasible_local_optima_best_first():
    p = get_preset("MB")
    prog = Program.create(get_family(p.family), flops=p.flops, params=p.params, rho=p.rho)
    scorer = BatchScorer(prog, build_slot_tables(prog))
    stage = next(s for s in TIMED_PLAN.stages if s.name == "evolve-and-climb")
    settings = replace(stage.settings, evolution=replace(stage.settings.evolution, evaluations=3000),
                       restart_evaluations=3000)
    optima, scored = climb_with_restarts(scorer, settings, deadline=time.perf_counter() + 3)
    assert len(optima) >= 2 and scored > 3000
    assert [v for _, _, v in optima] == sorted((v for _, _, v in optima), reverse=True)
    first = evolve(prog, evaluations=3000, seed=0, slots=scorer.slots)
    assert optima[0][2] >= first.objective   # a climb never ends below its start
    for c, d, v in optima:
        out = scorer(c[None], d[None])
        assert out["feasible"][0] and out["objective"][0] == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize("family", SMALL_FAMILIES, ids=lambda f: f.name)
def test_encode_inverts_the_design_choices(family):
    from deepmad_nni.core.incumbents import decode as _design
    prog = Program.create(family, rho=family.default_rho)
    scorer = BatchScorer(prog, build_slot_tables(prog))
    combos, depths = all_designs(scorer.slots)
    ls = LocalSearch(scorer)
    for r in np.random.default_rng(1).choice(len(combos), 20, replace=False):
        design = _design(family, scorer.slots, tuple(zip(combos[r][::-1], depths[r][::-1])))
        c, d = ls.encode(design.choices)
        assert (c == combos[r]).all() and (d == depths[r]).all()
    with pytest.raises(ValueError, match="not a design"):
        ls.encode(tuple((9999, op, depth, mid) for _, op, depth, mid in design.choices))


def test_neighbourhoods_scored_in_small_batches_give_the_same_values(monkeypatch):
    import deepmad_nni.core.local_search as local_search
    p = get_preset("R18")
    prog = Program.create(get_family(p.family), flops=p.flops, params=p.params, rho=p.rho)
    scorer = BatchScorer(prog, build_slot_tables(prog))
    start = evolve(prog, evaluations=2000, seed=0, slots=scorer.slots)
    ls = LocalSearch(scorer)
    whole = {name: ls.values(start.combos, start.depths, build())
             for name, build in ls._neighbourhoods(start.combos, start.depths)}
    monkeypatch.setattr(local_search, "BATCHES", replace(local_search.BATCHES, neighbours=50))
    for name, build in ls._neighbourhoods(start.combos, start.depths):
        np.testing.assert_allclose(ls.values(start.combos, start.depths, build()), whole[name], rtol=1e-12)
    assert all(np.isfinite(v).any() for v in whole.values())
