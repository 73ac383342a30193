"""The solver's primal heuristics: the evolutionary baseline and the box search only return feasible, better designs."""
import time

import numpy as np

from core_families import TINY_MBSE
from deepmad_nni.core import Program, get_family, get_preset
from deepmad_nni.core.evolution import evolve
from deepmad_nni.core.neighbourhood import box_family, improve
from deepmad_nni.core.plan import BOX_PLAN, TIMED_PLAN
from deepmad_nni.core.runner import run_plan
from deepmad_nni.core.slots import BatchScorer, build_slot_tables


def test_evolution_returns_a_feasible_design_and_a_monotone_history():
    p = get_preset("MB")
    prog = Program.create(get_family(p.family), flops=p.flops, params=p.params, rho=p.rho)
    res = evolve(prog, evaluations=5000, seed=1)
    out = BatchScorer(prog, build_slot_tables(prog))(res.combos[None], res.depths[None])
    assert out["feasible"][0] and out["objective"][0] == res.objective
    best = [v for _, v in res.history]
    assert best == sorted(best) and res.evaluations >= 5000
    again = evolve(prog, evaluations=5000, seed=1)
    assert again.objective == res.objective   # same seed, same search


def test_box_contains_its_centre_and_improve_only_improves():
    prog = Program.create(TINY_MBSE, flops=20e6, params=0.2e6, rho=0.6)
    start = min((a for a in TINY_MBSE.enumerate()), key=lambda a: prog.score(a).flops)
    from deepmad_nni.core.result import Design
    choices = tuple((st.c_out, next(o for o in slot.ops if o.block == st.block and o.kernel == st.kernel
                                    and o.mid(st.c_in, st.c_out) == st.mid), st.depth, st.mid)
                    for st, slot in zip(start.stages, TINY_MBSE.slots))
    box = box_family(TINY_MBSE, choices, radius=1, depth_radius=2)
    assert start.canonical() in {a.canonical() for a in box.enumerate()}
    design = Design(start, prog.score(start), choices)
    settings = next(s for s in TIMED_PLAN.stages if s.name == "box-search").settings.box

    def search(sub, *, floor, node_limit, time_limit):
        return run_plan(sub, BOX_PLAN, time_limit=time_limit, node_limit=node_limit, floor=floor)
    res = improve(prog, design, settings, box_time=5, deadline=time.perf_counter() + 20, search=search)
    objectives = [design.score.objective] + [d.score.objective for d in res.designs]
    assert np.all(np.diff(objectives) > 0) and res.improvements == len(res.designs) >= 1
    assert all(prog.feasible(prog.score(d.architecture)) for d in res.designs)
