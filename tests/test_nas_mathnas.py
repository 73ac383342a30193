"""The MathNAS NNI strategy: estimate through NNI's engine, the ILP's designs within budget by NNI's profilers,
NasExperiment (sequential engine), NAS-Bench-Macro, determinism, cell spaces, clear errors."""
import itertools
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nni")

import nni  # noqa: E402
from nni.nas.evaluator import Evaluator  # noqa: E402
from nni.nas.execution import SequentialExecutionEngine  # noqa: E402
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableConv2d, MutableLinear  # noqa: E402
from nni.nas.space import SimplifiedModelSpace  # noqa: E402
from torch import nn  # noqa: E402

from deepmad_nni import MathNAS  # noqa: E402
from deepmad_nni.nas.mathnas import MathNASInfeasible, design_of, read_blocks, sample_of  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")


class LookupEvaluator(Evaluator):
    """Reports ``metric(sample)`` for the frozen sample, without building the network (cheap)."""

    def __init__(self, metric):
        super().__init__()
        self.metric = metric

    def _execute(self, model):
        value = float(self.metric(dict(model.sample)))
        nni.report_final_result(value)
        return value

    def evaluate(self, model):  # pragma: no cover - _execute never builds the model
        raise NotImplementedError


class Toy(ModelSpace):
    """An op choice, two width choices (FLOPs not additive: conv2 costs w1 * w2) and a head."""

    def __init__(self):
        super().__init__()
        w1, w2 = nni.choice("w1", [4, 8, 16]), nni.choice("w2", [4, 8, 16])
        self.conv1 = MutableConv2d(3, w1, 3, padding=1, bias=False)
        self.act = LayerChoice([nn.ReLU(), nn.MaxPool2d(3, 1, 1), nn.Identity()], label="act")
        self.conv2 = MutableConv2d(w1, w2, 3, padding=1, bias=False)
        self.fc = MutableLinear(w2, 10)

    def forward(self, x):
        return self.fc(self.conv2(self.act(self.conv1(x))).mean((2, 3)))


VALUES = {"w1": {4: 0.0, 8: 1.0, 16: 1.5}, "w2": {4: 0.0, 8: 2.0, 16: 2.5}, "act": {"0": 0.3, "1": 0.0, "2": -1.0}}


def toy_metric(sample):
    return 50.0 + sum(VALUES[k][v if k != "act" else str(v)] for k, v in sample.items())


def _drive(strategy, space, metric, n):
    engine = SequentialExecutionEngine(max_model_count=n)
    strategy(SimplifiedModelSpace.from_model(space, LookupEvaluator(metric)), engine)
    return [dict(m.sample) for m in engine.list_models()]


def _toy_costs():
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler
    space, x = Toy(), torch.zeros(1, 3, 8, 8)
    flops = FlopsProfiler(space, x, count_normalization=False, count_activation=False, count_bias=False)
    return flops, NumParamsProfiler(space, x)


def _toy_samples():
    space = Toy().simplify()
    return [dict(zip(space, combo)) for combo in itertools.product(*(m.values for m in space.values()))]


def test_additive_metric_is_recovered_and_the_optimum_submitted_without_budget():
    strategy = MathNAS(seed=1)
    submitted = _drive(strategy, Toy(), toy_metric, 8)
    estimate = [e for e in strategy.history if e.phase == "estimate"]
    assert len(estimate) == strategy.minimum == 1 + 2 + 2 + 2
    for sample in _toy_samples():       # the fitted model equals the metric on every network
        d = design_of(strategy.blocks, sample)
        assert strategy.contributions.predict(d) == pytest.approx(toy_metric(sample), abs=1e-9)
    best = max(_toy_samples(), key=toy_metric)
    search = [e for e in strategy.history if e.phase == "search"]
    if best in [e.sample for e in estimate]:
        assert search[0].predicted <= toy_metric(best)
    else:
        assert search[0].sample == best
    assert len({repr(sorted(s.items())) for s in submitted}) == len(submitted) == 8


def test_budgets_hold_by_the_profilers_and_the_order_is_the_linear_models():
    flops, params = _toy_costs()
    budget = 0.5 * max(float(flops.profile(s)) for s in _toy_samples())
    strategy = MathNAS(flops=budget, input_size=(1, 3, 8, 8), seed=0)
    submitted = _drive(strategy, Toy(), toy_metric, 12)
    assert all(float(flops.profile(s)) <= budget for s in submitted)
    # the oracle: per-choice FLOPs as deltas from the base (single swaps, profiled), every network scored
    base = sample_of(strategy.blocks, strategy.base_design)
    f0 = float(flops.profile(base))
    delta = {(k, v): float(flops.profile({**base, k: v})) - f0 for s in _toy_samples() for k, v in s.items()}
    linear = {repr(s): f0 + sum(delta[(k, v)] for k, v in s.items()) for s in _toy_samples()}
    done = [e.sample for e in strategy.history if e.phase == "estimate"]
    admitted = [s for s in _toy_samples() if linear[repr(s)] <= budget * (1 + 1e-9)
                and float(flops.profile(s)) <= budget and s not in done]
    ranked = sorted(admitted, key=lambda s: -toy_metric(s))
    search = [e.sample for e in strategy.history if e.phase == "search"]
    assert [toy_metric(s) for s in search] == pytest.approx([toy_metric(s) for s in ranked[:len(search)]])
    # a design the linear model admits but the profiler refuses is cut, never submitted
    over = [s for s in _toy_samples() if linear[repr(s)] <= budget < float(flops.profile(s))]
    assert strategy.cuts <= len(over)


def test_same_seed_same_designs_other_seed_other_designs():
    runs = [_drive(MathNAS(seed=s), Toy(), toy_metric, 9) for s in (3, 3, 4)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    lsq = [_drive(MathNAS(seed=s, estimate="lstsq"), Toy(), toy_metric, 9) for s in (3, 3, 4)]
    assert lsq[0] == lsq[1] and lsq[0] != lsq[2]


class WithUniform(ModelSpace):
    def __init__(self):
        super().__init__()
        from nni.nas.nn.pytorch import MutableDropout
        self.drop = MutableDropout(nni.uniform("dropout", 0.0, 0.5))
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.drop(x))


def test_bad_input_names_the_setting():
    for kwargs, match in [({"flops": -1, "input_size": (1, 3, 8, 8)}, "flops must be"),
                          ({"flops": 1e6}, "input_size must be"), ({"estimate": "pairs"}, "estimate must be"),
                          ({"estimate_evaluations": 0}, "estimate_evaluations must be"),
                          ({"base": "middle"}, "base must be"), ({"seed": -1}, "seed must be"),
                          ({"refit": 1}, "refit must be")]:
        with pytest.raises(ValueError, match=match):
            MathNAS(**kwargs)
    with pytest.raises(TypeError):
        MathNAS(1e6)
    with pytest.raises(ValueError, match="label 'dropout' is Numerical"):
        _drive(MathNAS(), WithUniform(), lambda s: 0.0, 3)
    with pytest.raises(ValueError, match=r"estimate_evaluations must be >= 7 .* but got 5"):
        _drive(MathNAS(estimate_evaluations=5), Toy(), toy_metric, 10)
    with pytest.raises(ValueError, match=r"max_trial_number must be >= 7 .* but got 4"):
        _drive(MathNAS(), Toy(), toy_metric, 4)
    with pytest.raises(MathNASInfeasible, match="flops <= 10"):
        _drive(MathNAS(flops=10, input_size=(1, 3, 8, 8)), Toy(), toy_metric, 10)
    assert repr(MathNAS(seed=2)).startswith("MathNAS(flops=None, params=None")


def test_nas_experiment_sequential_and_infeasible_fails_it(tmp_path, monkeypatch):
    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    monkeypatch.setenv("HOME", str(tmp_path))

    def experiment(strategy, n):
        config = NasExperimentConfig("sequential", "simplified", "local")
        config.experiment_working_directory = str(tmp_path)
        config.max_trial_number = n
        return NasExperiment(Toy(), LookupEvaluator(toy_metric), strategy, config)

    strategy = MathNAS(flops=1e6, input_size=(1, 3, 8, 8))
    exp = experiment(strategy, 10)
    try:
        exp.run()
        top = exp.export_top_models(top_k=1, formatter="dict")
    finally:
        exp.stop()
    assert len(strategy.history) == 10
    best = max((e for e in strategy.history), key=lambda e: e.metric)
    assert top[0] == best.sample
    exp = experiment(MathNAS(flops=10, input_size=(1, 3, 8, 8)), 10)
    try:
        with pytest.raises(MathNASInfeasible):
            exp.run()
    finally:
        exp.stop()


# -- NAS-Bench-Macro -----------------------------------------------------------------------------------
def _bench():
    from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, default_path
    if default_path() is None:
        pytest.skip("NAS-Bench-Macro table not found")
    return NasBenchMacro(default_path())


def test_nas_bench_macro_swap_scheme_and_ilp_equal_the_table_oracle():
    from deepmad_nni.compare.bench_track import BenchmarkProblem
    from deepmad_nni.compare.harness import Budget, run_nni_strategy
    from deepmad_nni.compare.mathnas_track import make_mathnas
    macro = pytest.importorskip("search_spaces.nas_bench_macro")
    bench = _bench()
    problem = BenchmarkProblem(bench, Budget("b", flops=60e6, params=1.5e6))
    strategy = make_mathnas(problem, seed=0)
    record = run_nni_strategy(problem, "mathnas", strategy, n_max=22, seed=0)
    assert not record.note, record.note
    assert record.rejected == 0 and len(record.candidates) == 22
    assert all(problem.budget.admits(c.flops, c.params) for c in record.candidates)
    estimate = [macro.key_of_sample(e.sample) for e in strategy.history if e.phase == "estimate"]
    assert len(estimate) == 17 and len(set(c.arch for c in record.candidates)) == 22
    base = estimate[0]
    acc = {k: bench[k].mean_acc for k in estimate}
    contrib = {(i, c): acc[base[:i] + c + base[i + 1:]] - acc[base] if c != base[i] else 0.0
               for i in range(8) for c in "012"}
    keys = ["".join(k) for k in itertools.product("012", repeat=8)]
    within = [k for k in keys if bench[k].flops <= 60e6 and bench[k].params <= 1.5e6 and k not in estimate]
    ranked = sorted(within, key=lambda k: -sum(contrib[(i, c)] for i, c in enumerate(k)))
    search = [macro.key_of_sample(e.sample) for e in strategy.history if e.phase == "search"]
    score = lambda k: sum(contrib[(i, c)] for i, c in enumerate(k))  # noqa: E731
    assert [score(k) for k in search] == pytest.approx([score(k) for k in ranked[:5]], abs=1e-9)
    assert strategy.cuts == 0          # FLOPs and params are additive over its layers: the linear model is exact


def test_nas_bench_macro_in_a_nas_experiment(tmp_path, monkeypatch):
    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    macro = pytest.importorskip("search_spaces.nas_bench_macro")
    bench = _bench()
    monkeypatch.setenv("HOME", str(tmp_path))
    config = NasExperimentConfig("sequential", "simplified", "local")
    config.experiment_working_directory = str(tmp_path)
    config.max_trial_number = 20
    strategy = MathNAS(flops=55e6, input_size=(1, 3, 32, 32), seed=0)
    evaluator = LookupEvaluator(lambda s: bench[macro.key_of_sample(s)].mean_acc)
    exp = NasExperiment(macro.NasBenchMacroSpace(), evaluator, strategy, config)
    try:
        exp.run()
    finally:
        exp.stop()
    assert len(strategy.history) == 20 and all(e.metric is not None for e in strategy.history)
    assert all(bench[macro.key_of_sample(e.sample)].flops <= 55e6 for e in strategy.history)


# -- a cell space: InputChoice labels as binary blocks with their n_chosen ------------------------------------
def test_darts_cell_space_inputs_become_binaries():
    from nni.nas.hub.pytorch import DARTS
    space = DARTS(width=4, num_cells=3, dataset="cifar")
    blocks, bspace = read_blocks(space)
    inputs = [b for b in blocks if b.value is not None]
    assert inputs and all(len(b.values) == 2 for b in inputs) and bspace.groups
    rng = np.random.default_rng(0)

    weights = {}

    def metric(sample):          # additive over ops and chosen inputs
        total = 0.0
        for label, v in sorted(sample.items()):
            for item in (v if isinstance(v, list) else [v]):
                key = (label, repr(item))
                if key not in weights:
                    weights[key] = float(rng.normal())
                total += weights[key]
        return total

    strategy = MathNAS(seed=0)
    n = 1 + sum(len(m.values) - 1 for m in space.simplify().values())
    submitted = _drive(strategy, space, metric, n + 2)
    assert len(submitted) == strategy.minimum + 2 == n + 2
    for s in submitted:                                 # every submitted sample meets its n_chosen
        for label, m in space.simplify().items():
            if hasattr(m, "n_chosen"):
                assert len(s[label]) == m.n_chosen
    search = [e for e in strategy.history if e.phase == "search"]
    assert search[0].predicted == pytest.approx(metric(search[0].sample), abs=1e-9)


def test_darts_cell_space_under_a_flops_budget_is_profiled():
    """NNI 3.0's FlopsProfiler has no shape formula for the DARTS cells' stack/sum and FactorizedReduce's pad;
    MathNAS registers them (deepmad_nni.nas.nni_shapes), so a FLOPs budget works on the hub space as shipped."""
    from nni.nas.hub.pytorch import DARTS
    from nni.nas.profiler.pytorch.flops import FlopsProfiler
    space = DARTS(width=4, num_cells=3, dataset="cifar")
    budget = 2.15e6                                  # about the median of random samples at this size
    strategy = MathNAS(flops=budget, input_size=(1, 3, 32, 32), seed=0)
    submitted = _drive(strategy, space, lambda sample: float(len(repr(sorted(sample.items())))), 140)
    assert len(submitted) == 140 and all(e.metric is not None for e in strategy.history)
    from deepmad_nni.nas.nni_shapes import quiet_shape_inference
    with quiet_shape_inference():
        profiler = FlopsProfiler(space, torch.zeros(1, 3, 32, 32), count_normalization=False,
                                 count_activation=False, count_bias=False)
    for sample in submitted[-3:]:                    # the ILP's designs
        assert profiler.profile(sample) <= budget


def test_swaps_over_a_tight_budget_are_repaired_within_it():
    from deepmad_nni.compare.bench_track import BenchmarkProblem
    from deepmad_nni.compare.harness import Budget, run_nni_strategy
    from deepmad_nni.compare.mathnas_track import make_mathnas
    problem = BenchmarkProblem(_bench(), Budget("b", flops=45e6))
    for seed in range(3):
        strategy = make_mathnas(problem, seed=seed)
        record = run_nni_strategy(problem, "mathnas", strategy, n_max=20, seed=seed)
        estimate = [e for e in strategy.history if e.phase == "estimate"]
        assert record.rejected == 0 and len(estimate) == strategy.minimum
        assert strategy.contributions.determined
        assert all(c.flops <= 45e6 for c in record.candidates)
