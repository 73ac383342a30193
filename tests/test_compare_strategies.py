"""Each strategy through the harness on NAS-Bench-Macro with a tiny budget (lookups, no training)."""
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytest.importorskip("nni")

from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, default_path  # noqa: E402
from deepmad_nni.compare import Budget, run_deepmad, run_nni_strategy  # noqa: E402
from deepmad_nni.compare import strategies as S  # noqa: E402
from deepmad_nni.compare.bench_track import BenchmarkProblem, network_of_key  # noqa: E402

PATH = default_path()
pytestmark = pytest.mark.skipif(PATH is None, reason="NAS-Bench-Macro file not found")
BUDGET = Budget("50M", flops=50e6)


@pytest.fixture(scope="module")
def bench():
    return NasBenchMacro(PATH)


@pytest.fixture(scope="module")
def problem(bench):
    return BenchmarkProblem(bench, BUDGET)


def _check_run(rec, bench, n):
    assert len(rec.candidates) == n, rec.note
    for c in rec.candidates:
        e = bench[c.arch]
        assert (c.accuracy, c.flops, c.params) == (e.mean_acc, e.flops, e.params)
        assert c.flops <= BUDGET.flops
        assert c.gpu_s == pytest.approx(BenchmarkProblem(bench, BUDGET).cost.gpu_seconds(e.flops))
    assert rec.reference_accuracy == bench.best(flops=BUDGET.flops).mean_acc
    assert rec.at(n)["regret"] >= 0


@pytest.mark.parametrize("name", ["random", "grid", "evolution", "tpe", "rl"])
def test_nni_strategy_through_harness(name, problem, bench):
    if name == "rl" and not S.rl_available()[0]:
        pytest.skip(S.rl_available()[1])
    rec = run_nni_strategy(problem, name, S.NNI_STRATEGIES[name](1), n_max=4, seed=1)
    _check_run(rec, bench, 4)
    assert len({c.arch for c in rec.candidates}) == 4  # NNI's dedup: no sample trained twice


@pytest.mark.parametrize("name", ["random", "evolution", "tpe"])
def test_budget_n_run_is_the_prefix_of_a_longer_run(name, problem):
    short = run_nni_strategy(problem, name, S.NNI_STRATEGIES[name](7), n_max=3, seed=7)
    long = run_nni_strategy(problem, name, S.NNI_STRATEGIES[name](7), n_max=6, seed=7)
    assert [c.arch for c in short.candidates] == [c.arch for c in long.candidates[:3]]


def test_seeds_change_the_samples(problem):
    a = run_nni_strategy(problem, "random", S.NNI_STRATEGIES["random"](1), n_max=4, seed=1)
    b = run_nni_strategy(problem, "random", S.NNI_STRATEGIES["random"](2), n_max=4, seed=2)
    assert [c.arch for c in a.candidates] != [c.arch for c in b.candidates]


def test_sequential_tpe_never_sleeps(problem, monkeypatch):
    import nni.nas.strategy.hpo as hpo

    def no_sleep(_):
        raise AssertionError("HPOTunerStrategy's sleep was called")

    monkeypatch.setattr(hpo.time, "sleep", no_sleep)
    rec = run_nni_strategy(problem, "tpe", S.sequential_tpe(0), n_max=3, seed=0)
    assert len(rec.candidates) == 3 and rec.note == ""
    assert S.sequential_tpe(0).tuner.optimize_mode.value == "maximize"


def test_deepmad_top1_is_the_core_optimum_and_topk_distinct(problem, bench):
    from deepmad_nni.benchmarks.nas_bench_macro import key_of_architecture
    from deepmad_nni.core import solve
    rec = run_deepmad(problem, n_max=5)
    best = solve("nas-bench-macro", flops=BUDGET.flops)
    assert rec.zero_cost_pick.arch == key_of_architecture(best.architecture)
    assert rec.at(0)["trained"] == 0 and rec.at(0)["gpu_hours"] == 0
    assert rec.at(0)["accuracy"] == bench[rec.zero_cost_pick.arch].mean_acc
    _check_run(rec, bench, 5)
    assert len({network_of_key(c.arch) for c in rec.candidates}) == 5


def test_network_of_key_matches_the_benchmark_duplicates(bench):
    classes = {}
    for key, e in bench.entries.items():
        classes.setdefault(network_of_key(key), set()).add(e.mean_acc)
    assert len(classes) == 3969  # SOURCE.md: 3969 distinct networks were trained
    assert all(len(accs) == 1 for accs in classes.values())


def test_strategy_names_checked():
    with pytest.raises(ValueError, match="strategies"):
        S.check_strategies(["random", "bogus"])


def test_nni_deepmad_strategy_trains_the_same_designs(problem):
    """The package's NNI DeepMAD strategy, run through the same harness, trains DeepMAD's top-k in order."""
    from deepmad_nni.nas.strategy import DeepMAD
    via_nni = run_nni_strategy(problem, "deepmad-nni", DeepMAD(flops=BUDGET.flops, top_k=6), n_max=6, seed=0)
    assert [c.arch for c in via_nni.candidates] == [c.arch for c in run_deepmad(problem, n_max=6).candidates]


@pytest.mark.parametrize("name", ["deepmad-optuna", "deepmad-evolution"])
def test_deepmad_loops_through_harness(name, problem, bench):
    """DeepMADOptuna / DeepMADEvolution through NNI's engine like the built-ins: N distinct networks, DeepMAD's
    top-1 first (Optuna's first trial is the paper's defaults; evolution starts from the top-k)."""
    if name == "deepmad-optuna":
        pytest.importorskip("optuna")
    from deepmad_nni.compare.optuna_track import make_deepmad_loop, run_deepmad_loop
    strategy = make_deepmad_loop(problem, name, 0)
    assert type(strategy).__name__ == {"deepmad-optuna": "DeepMADOptuna", "deepmad-evolution": "DeepMADEvolution"}[name]
    assert (strategy.flops, strategy.params) == (BUDGET.flops, BUDGET.params)
    rec = run_deepmad_loop(problem, name, n_max=4, seed=0)
    _check_run(rec, bench, 4)
    assert len({network_of_key(c.arch) for c in rec.candidates}) == 4 and rec.rejected == 0
    assert rec.candidates[0].arch == run_deepmad(problem, n_max=1).zero_cost_pick.arch
    again = run_deepmad_loop(problem, name, n_max=4, seed=0)
    assert [c.arch for c in again.candidates] == [c.arch for c in rec.candidates]  # seeded: the same run
