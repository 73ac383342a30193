"""The DeepMAD NNI strategy: submits the program's optimum, within budget, top_k distinct, resumable."""
import itertools
import json
import os
from pathlib import Path
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nni")

import nni  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.execution import SequentialExecutionEngine  # noqa: E402
from nni.nas.space import SimplifiedModelSpace  # noqa: E402

from deepmad_nni.core import Program, score, to_structure  # noqa: E402
from deepmad_nni.nas.export import frozen_model, load_sample, sample_json  # noqa: E402
from deepmad_nni.nas.export import to_structure as export_structure  # noqa: E402
from deepmad_nni.nas.strategy import DeepMAD  # noqa: E402
from deepmad_nni.nas.trial_info import INFO_KEY, design_sample  # noqa: E402
from search_spaces import CONFIGS, get_space  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")


def _count_params(model):
    nni.report_final_result(float(sum(p.numel() for p in model.parameters())))


def _run(strategy, space, max_models=10):
    strategy(SimplifiedModelSpace.from_model(space, FunctionalEvaluator(_count_params)),
             SequentialExecutionEngine(max_model_count=max_models))
    return [design_sample(m.sample) for m in strategy.list_models(sort=False)]


def test_submitted_samples_carry_rho0_and_figures_beside_the_labels():
    strategy = DeepMAD(flops=150e6, top_k=2)
    space = get_space("resnet-basic-cifar-small")
    strategy(SimplifiedModelSpace.from_model(space, FunctionalEvaluator(_count_params)),
             SequentialExecutionEngine(max_model_count=2))
    models = list(strategy.list_models(sort=False))
    for rank, (model, design) in enumerate(zip(models, strategy.designs)):
        info = model.sample[INFO_KEY]
        assert design_sample(model.sample) == design.sample
        assert info["rank"] == rank and info["rho0"] == strategy.rho_used == 0.3 and info["beta"] == 10.0
        assert info["objective"] == pytest.approx(design.score.objective)
        assert (info["flops"], info["params"]) == (design.score.flops, design.score.params)
        assert model.metric == float(design.score.params)     # the labels alone built the network
    json.dumps([m.sample for m in models])                      # what NNI's manager stores for the web UI


def _brute_force(name, **constraints):
    """Oracle: every sample of the NNI space scored by the core; the best feasible (objective, sample)."""
    cfg, space = CONFIGS[name], get_space(name)
    program = Program.create(cfg.family(), **constraints)
    mutables = space.simplify()
    best = None
    for combo in itertools.product(*(m.values for m in mutables.values())):
        sample = dict(zip(mutables, combo))
        s = program.score(cfg.architecture_of_sample(sample))
        if program.feasible(s) and (best is None or s.objective > best[0]):
            best = (s.objective, sample)
    return best


@pytest.mark.parametrize("name,budget", [("resnet-basic-cifar-small", dict(flops=150e6, rho=0.3)),
                                         ("mbconv-se-cifar-small", dict(params=2e5, rho=0.5))])
def test_submits_the_core_optimum(name, budget):
    submitted = _run(DeepMAD(**budget), get_space(name))
    objective, sample = _brute_force(name, **budget)
    assert submitted == [sample]
    cfg = CONFIGS[name]
    assert score(cfg.architecture_of_sample(submitted[0])).objective == pytest.approx(objective)


def test_frozen_winner_within_budget_by_nni_profilers():
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler
    name, flops, params = "mbconv-se-cifar-small", 20e6, 3e5
    strategy = DeepMAD(flops=flops, params=params)
    submitted = _run(strategy, get_space(name))
    model = frozen_model(get_space(name), submitted[0])
    x = torch.zeros(1, 3, 32, 32)
    f = FlopsProfiler(model, x, count_normalization=False, count_activation=False, count_bias=False).expression
    p = NumParamsProfiler(model, x).expression
    assert f <= flops and p <= params
    assert (f, p) == (strategy.designs[0].flops, strategy.designs[0].params)
    assert strategy.designs[0].status == "optimal" and strategy.designs[0].gap == 0


def test_top_k_submits_k_distinct_networks():
    strategy = DeepMAD(flops=150e6, top_k=3)
    submitted = _run(strategy, get_space("resnet-basic-cifar-small"))
    assert len(submitted) == 3 and len({json.dumps(s, sort_keys=True) for s in submitted}) == 3
    objectives = [d.objective for d in strategy.designs]
    assert objectives == sorted(objectives, reverse=True)
    assert all(d.metric is not None for d in strategy.designs)


def test_resume_through_state_dict():
    space = get_space("resnet-basic-cifar-small")
    first = DeepMAD(flops=150e6, top_k=3)
    _run(first, space, max_models=1)          # budget for one model: two designs left
    state = json.loads(json.dumps(first.state_dict()))
    assert state["submitted"] == 1
    second = DeepMAD(flops=150e6, top_k=3)
    second.initialize(SimplifiedModelSpace.from_model(space, FunctionalEvaluator(_count_params)),
                      SequentialExecutionEngine(max_model_count=10))
    second.load_state_dict(state)
    second.solve = None                       # resuming must not solve again
    second.run()
    resumed = [design_sample(m.sample) for m in second.list_models(sort=False)]
    assert resumed == [d["sample"] for d in state["designs"][1:]]


def test_hub_space_design_within_budget():
    from nni.nas.hub.pytorch import MobileNetV3Space
    space = MobileNetV3Space()
    strategy = DeepMAD(flops=150e6, params=4e6, rho=0.5)
    submitted = _run(strategy, space)
    d = strategy.designs[0]
    assert d.status == "feasible-with-gap" and d.gap >= 0 and d.effectiveness <= 0.5
    model = frozen_model(space, submitted[0])
    assert sum(p.numel() for p in model.parameters()) == d.params <= 4e6


def test_exports():
    name = "resnet-basic-cifar-small"
    strategy = DeepMAD(flops=150e6)
    space = get_space(name)
    _run(strategy, space)
    design = strategy.designs[0]
    assert to_structure(CONFIGS[name].architecture_of_sample(design.sample)) == export_structure(space, design)
    assert json.loads(sample_json(design)) == design.sample


def test_sample_json_file(tmp_path):
    path = tmp_path / "design.json"
    sample_json({"a": 1}, path)
    assert load_sample(path) == {"a": 1}


def test_bad_input():
    for kwargs, match in [({"rho": 0}, "rho"), ({"rho": -1}, "rho"), ({"flops": "many"}, "flops"),
                          ({"convention": "tiny-nas"}, "convention"), ({"top_k": 0}, "top_k"),
                          ({"beta": -1}, "beta"), ({"alpha": ["x"]}, "alpha"),
                          ({"time_limit": 0}, "time_limit"), ({"input_size": (1, 3)}, "input_size")]:
        with pytest.raises(ValueError, match=match):
            DeepMAD(**kwargs)
    with pytest.raises(TypeError):
        DeepMAD(budget=1)
    with pytest.raises(TypeError):
        DeepMAD(1e6)
    assert repr(DeepMAD(flops=1e6, top_k=2)).startswith("DeepMAD(flops=1000000.0, params=None")


def test_infeasible_budget_fails_the_experiment_with_the_reachable_range(tmp_path, monkeypatch):
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    from deepmad_nni.core.rho_range import rho_range
    from deepmad_nni.nas.route import DeepMADInfeasible
    monkeypatch.setenv("HOME", str(tmp_path))
    name = "resnet-basic-cifar-small"
    reach = rho_range(CONFIGS[name].family(), flops=150e6)
    config = NasExperimentConfig("sequential", "simplified", "local")
    config.experiment_working_directory = str(tmp_path)
    config.max_trial_number = 2
    strategy = DeepMAD(flops=150e6, rho=reach.low * 0.9)
    exp = NasExperiment(get_space(name), FunctionalEvaluator(_count_params), strategy, config)
    try:
        with pytest.raises(DeepMADInfeasible, match=f"choose rho_0 >= {reach.low:.4g}"):
            exp.run()
    finally:
        exp.stop()
    assert not list(strategy.engine.list_models())
    with pytest.raises(DeepMADInfeasible, match="flops"):   # a budget below the smallest network
        _run(DeepMAD(flops=1e3), get_space(name))


def test_input_size_other_than_the_family_is_refused():
    with pytest.raises(ValueError, match="input_size must be"):
        _run(DeepMAD(flops=150e6, input_size=(1, 3, 64, 64)), get_space("resnet-basic-cifar-small"))


def test_nas_experiment_sequential_drop_in(tmp_path):
    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    config = NasExperimentConfig("sequential", "simplified", "local")
    config.experiment_working_directory = str(tmp_path)
    config.max_trial_number = 5
    strategy = DeepMAD(flops=150e6, top_k=2)
    exp = NasExperiment(get_space("resnet-basic-cifar-small"), FunctionalEvaluator(_count_params), strategy, config)
    try:
        exp.run()
        top = [design_sample(s) for s in exp.export_top_models(top_k=2, formatter="dict")]
    finally:
        exp.stop()
    assert sorted(json.dumps(s, sort_keys=True) for s in top) == \
        sorted(json.dumps(d.sample, sort_keys=True) for d in strategy.designs)


def test_nas_bench_macro_space_uses_the_core_family():
    macro = pytest.importorskip("search_spaces.nas_bench_macro")
    from deepmad_nni.benchmarks.nas_bench_macro import key_of_architecture
    from deepmad_nni.core import solve
    strategy = DeepMAD(params=1.5e6, rho=0.5)
    submitted = _run(strategy, macro.NasBenchMacroSpace())
    best = solve("nas-bench-macro", params=1.5e6, rho=0.5)
    assert macro.key_of_sample(submitted[0]) == key_of_architecture(best.architecture)


@pytest.mark.skipif(os.environ.get("DEEPMAD_SKIP_TS") == "1", reason="DEEPMAD_SKIP_TS=1: no NNI manager run")
def test_nas_experiment_default_ts_engine(tmp_path, monkeypatch):
    from nni.nas.experiment import NasExperiment
    from nni_ts import ts_config
    config, port = ts_config(tmp_path, monkeypatch, max_trial_number=2)
    strategy = DeepMAD(flops=150e6, top_k=2)
    from deepmad_nni.nas.evaluators import report_params   # importable by the trial processes
    exp = NasExperiment(get_space("resnet-basic-cifar-small"), FunctionalEvaluator(report_params), strategy, config)
    try:
        exp.run(port=port)
        top = [design_sample(s) for s in exp.export_top_models(top_k=2, formatter="dict")]
        jobs = exp.list_trial_jobs()      # what the web UI shows: each trial's parameters hold the sample
    finally:
        exp.stop()
    shown = [j.hyperParameters[0].parameters["sample"][INFO_KEY] for j in jobs]
    assert sorted(i["rank"] for i in shown) == [0, 1] and all(i["rho0"] == 0.3 and "objective" in i for i in shown)
    assert sorted(json.dumps(s, sort_keys=True) for s in top) == \
        sorted(json.dumps(d.sample, sort_keys=True) for d in strategy.designs)
    assert all(d.metric == float(score(CONFIGS["resnet-basic-cifar-small"].architecture_of_sample(d.sample)).params)
               for d in strategy.designs)


def test_nni_registry_goes_to_the_test_home_not_the_users(tmp_path):
    """NasExperiment registers in ~/nni-experiments: under the tests, HOME is a temporary folder (conftest)."""
    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.tools.nnictl import config_utils
    home = Path(os.environ["HOME"])
    assert home.name.startswith("deepmad-nni-tests-home-")
    config = NasExperimentConfig("sequential", "simplified", "local")
    config.experiment_working_directory = str(tmp_path)
    config.max_trial_number = 1
    exp = NasExperiment(get_space("resnet-basic-cifar-small"), FunctionalEvaluator(_count_params),
                        DeepMAD(flops=150e6), config)
    try:
        exp.run()
    finally:
        exp.stop()
    assert Path(config_utils.Experiments().experiment_file).parent == home / "nni-experiments"
    assert exp.id in json.loads((home / "nni-experiments" / ".experiment").read_text())
