"""Latency and feature-map budgets in the evaluation loops (DeepMADOptuna, DeepMADEvolution) and the tuner.

The space is NAS-Bench-Macro's, the table synthetic (tests/test_latency_solve.py), the metric a real one of
the built network (its parameter count), which pulls the search towards large, slow networks: every design
the loops submit must still meet the budgets by the table's prediction, and the same search without them must
go beyond, so the budget is what holds them.
"""
import json
import warnings

import numpy as np
import pytest

pytest.importorskip("nni")
pytest.importorskip("optuna")

import nni  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.execution import SequentialExecutionEngine  # noqa: E402
from nni.nas.space import SimplifiedModelSpace  # noqa: E402

from deepmad_nni.core import get_family, solve  # noqa: E402
from deepmad_nni.core.latency import predicted_latency  # noqa: E402
from deepmad_nni.nas.route import route_of  # noqa: E402
from deepmad_nni.nas.trial_info import INFO_KEY, design_sample  # noqa: E402
from test_latency_solve import synthetic_table  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
FLOPS = 60e6
N = 12


@pytest.fixture(scope="module")
def setting():
    from search_spaces.nas_bench_macro import NasBenchMacroSpace
    family = get_family("nas-bench-macro")
    table = synthetic_table(family, seed=3)
    top = solve(family, flops=FLOPS, top_k=60)
    latency = float(np.quantile([predicted_latency(d.architecture, table) for d in top.designs], 0.3))
    return NasBenchMacroSpace(), table, latency


def _run(strategy, space):
    def evaluate(model):
        nni.report_final_result(float(sum(p.numel() for p in model.parameters())))
    strategy(SimplifiedModelSpace.from_model(space, FunctionalEvaluator(evaluate)),
             SequentialExecutionEngine(max_model_count=N))
    return [m.sample for m in strategy.list_models(sort=False)]


def _strategies(**budgets):
    from deepmad_nni import DeepMADEvolution, DeepMADOptuna
    return {"evolution": DeepMADEvolution(flops=FLOPS, initial=3, seed=0, **budgets),
            "optuna": DeepMADOptuna(flops=FLOPS, defaults=3, seed=0, **budgets)}


@pytest.mark.parametrize("name", ["evolution", "optuna"])
def test_every_design_a_loop_submits_meets_the_latency_budget(setting, name):
    space, table, latency = setting
    route = route_of(space)
    samples = _run(_strategies(latency=latency, latency_table=table)[name], space)
    assert len({json.dumps(design_sample(s), sort_keys=True) for s in samples}) == N
    for s in samples:
        ms = route.predicted_latency(design_sample(s), table)
        assert ms <= latency
        assert s[INFO_KEY]["latency_ms"] == pytest.approx(ms)
        assert s[INFO_KEY]["flops"] <= FLOPS
    assert "mutation" in {s[INFO_KEY]["source"] for s in samples} or name == "optuna"
    unbounded = _run(_strategies()[name], space)      # the same search without the budget goes beyond it
    assert max(route.predicted_latency(design_sample(s), table) for s in unbounded) > latency


def test_evolution_meets_a_feature_map_budget():
    """On a space with width choices (NAS-Bench-Macro's widths are fixed): every design within the cap."""
    from deepmad_nni import DeepMADEvolution
    from search_spaces import get_space
    space = get_space("resnet-basic-cifar-small")
    route = route_of(space)
    free = _run(DeepMADEvolution(flops=150e6, initial=3, seed=0), space)
    sizes = sorted(route.feature_map(design_sample(s)) for s in free)
    cap = sizes[len(sizes) // 3]
    assert sizes[-1] > cap
    samples = _run(DeepMADEvolution(flops=150e6, initial=3, seed=0, max_feature_map=cap), space)
    assert len(samples) == N and all(route.feature_map(design_sample(s)) <= cap for s in samples)
    assert all(s[INFO_KEY]["max_feature_map"] <= cap for s in samples)


def test_loops_refuse_a_latency_without_table():
    from deepmad_nni import DeepMADEvolution, DeepMADOptuna
    for cls in (DeepMADEvolution, DeepMADOptuna):
        with pytest.raises(ValueError, match="latency needs latency_table"):
            cls(flops=FLOPS, latency=5.0)
        with pytest.raises(ValueError, match="max_feature_map"):
            cls(flops=FLOPS, max_feature_map=-1)


def test_tuner_class_args_latency(tmp_path):
    from deepmad_nni.tuner import family_from_search_space
    from deepmad_nni.tuner.tuner import DeepMADTuner
    from test_tuner import OVERRIDES, TEMPLATE, small_space
    family = family_from_search_space(small_space(), TEMPLATE, **OVERRIDES)
    table, flops = synthetic_table(family, seed=1), 300_000
    top = solve(family, flops=flops, rho=0.9, top_k=40)
    latency = float(np.quantile([predicted_latency(d.architecture, table) for d in top.designs], 0.3))
    path = tmp_path / "table.json"
    table.save(path)
    tuner = DeepMADTuner(family=TEMPLATE.name, flops=flops, rho=0.9, top_k=4, latency=latency,
                         latency_table=str(path), **OVERRIDES)
    tuner.update_search_space(small_space())
    expected = solve(family, flops=flops, rho=0.9, top_k=4, latency=latency, latency_table=table)
    assert [f["objective"] for f in tuner.figures] == pytest.approx([d.score.objective for d in expected.designs])
    assert tuner.figures and all(f["latency_ms"] <= latency for f in tuner.figures)
    assert top.designs[0].score.objective > tuner.figures[0]["objective"]     # the budget binds
    with pytest.raises(ValueError, match="classArgs.latency needs classArgs.latency_table"):
        DeepMADTuner(family=TEMPLATE.name, flops=flops, latency=latency)
    with pytest.raises(ValueError, match="classArgs.latency_table: .*does not exist"):
        DeepMADTuner(family=TEMPLATE.name, flops=flops, latency_table=str(tmp_path / "missing.json"))


def test_tune_designs_within_the_latency_budget(setting, tmp_path):
    """deepmad_nni.tune (the Optuna loop over a family) with a latency budget: every evaluated design meets it,
    and a study is tied to its budget."""
    import optuna

    from deepmad_nni.optuna_loop import tune
    _, table, latency = setting
    seen = []

    def evaluate(arch):
        seen.append(predicted_latency(arch, table))
        return float(arch.stages[-1].c_out)

    storage = f"sqlite:///{tmp_path / 's.db'}"
    result = tune("nas-bench-macro", flops=FLOPS, evaluator=evaluate, n_trials=6, latency=latency,
                  latency_table=table, storage=storage, study_name="s", progress=False, plots=False)
    done = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and seen and max(seen) <= latency
    assert all(t.user_attrs["latency_ms"] <= latency for t in done)
    with pytest.raises(ValueError, match="was created with latency"):
        tune("nas-bench-macro", flops=FLOPS, evaluator=evaluate, n_trials=1, latency=latency * 2,
             latency_table=table, storage=storage, study_name="s", progress=False, plots=False)
