"""The Optuna loop in one process: oracle checks on NAS-Bench-Macro, the design cache, infeasible
programs, the Pareto front, plots, the CLI and bad input."""
from __future__ import annotations

import json

import pytest

optuna = pytest.importorskip("optuna")

from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, default_path, key_of_architecture  # noqa: E402
from deepmad_nni.optuna_loop import SearchRanges, tune  # noqa: E402
from deepmad_nni.optuna_loop._design import architecture_of  # noqa: E402
from deepmad_nni.optuna_loop._plots import pareto_front  # noqa: E402

BENCH = default_path()
needs_bench = pytest.mark.skipif(BENCH is None, reason="NAS-Bench-Macro file not found")
BUDGET = {"flops": 60e6, "params": 1.5e6}


def _arch(trial):
    a = trial.user_attrs
    return architecture_of(a["design"], resolution=a["resolution"], num_classes=10)


@needs_bench
def test_trials_record_the_benchmark_accuracy_of_their_design(tmp_path):
    bench = NasBenchMacro(BENCH)
    result = tune("nas-bench-macro", **BUDGET, benchmark_path=BENCH, n_trials=10, out_dir=tmp_path, seed=0,
                  progress=False)
    trials = result.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 10
    # the paper's defaults first; rho_0 = 0.5 clipped into the computed range (above its top the design is the same)
    top = result.study.user_attrs["deepmad"]["ranges"]["rho"][1]
    assert top < 0.5 and trials[0].params == {"rho_0": top, "beta": 10.0, "alpha_last": 8.0, "alpha_1": 1.0,
                                              "alpha_2": 1.0, "alpha_3": 1.0}
    from deepmad_nni.core import solve
    assert key_of_architecture(_arch(trials[0])) == key_of_architecture(solve("nas-bench-macro", **BUDGET).architecture)
    for t in trials:
        entry = bench[key_of_architecture(_arch(t))]
        assert t.value == t.user_attrs["accuracy"] == pytest.approx(entry.mean_acc)
        assert (t.user_attrs["flops"], t.user_attrs["params"]) == (entry.flops, entry.params)
        assert entry.flops <= BUDGET["flops"] and entry.params <= BUDGET["params"]
        assert t.user_attrs["device"] == "lookup" and t.user_attrs["wall_time_s"] > 0
    misses = [t.user_attrs["design_key"] for t in trials if t.user_attrs["cache"] == "miss"]
    assert sorted(misses) == sorted({t.user_attrs["design_key"] for t in trials})  # each design looked up once
    assert set(result.plots) == {"history", "rho_accuracy", "pareto"}
    for path in result.plots.values():
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "study.db").is_file()
    best = result.best_trials[0]
    assert best.value == max(t.value for t in trials)


def test_identical_designs_are_evaluated_once():
    calls = []

    def evaluate(arch):
        calls.append(key_of_architecture(arch))
        return 50.0 + len(calls)

    fixed = SearchRanges(rho=(0.5, 0.5), beta=(10, 10), alpha_last=(8, 8))
    result = tune("nas-bench-macro", **BUDGET, evaluator=evaluate, ranges=fixed, n_trials=4, progress=False)
    assert len(calls) == 1
    assert [t.value for t in result.study.trials] == [51.0] * 4
    assert [t.user_attrs["cache"] for t in result.study.trials] == ["miss", "hit", "hit", "hit"]


def test_infeasible_programs_prune_the_trial_with_a_reason():
    result = tune("nas-bench-macro", flops=1e6, evaluator=lambda arch: 1.0, n_trials=3, progress=False)
    assert [t.state for t in result.study.trials] == [optuna.trial.TrialState.PRUNED] * 3
    assert all("infeasible" in t.user_attrs["pruned_reason"] for t in result.study.trials)
    assert result.best_trials == [] and result.best_architecture is None


@needs_bench
def test_multi_objective_gives_a_pareto_front(tmp_path):
    result = tune("nas-bench-macro", **BUDGET, benchmark_path=BENCH, n_trials=12, multi_objective=True, seed=0,
                  out_dir=tmp_path, progress=False)
    done = result.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert all(t.values[1] == t.user_attrs["flops"] for t in done)
    front = result.pareto_front
    assert front and len({t.user_attrs["design_key"] for t in front}) == len(front)
    for f in front:  # nobody dominates a front member
        assert not any(t.values[0] >= f.values[0] and t.values[1] <= f.values[1] and t.values != f.values
                       for t in done)
    assert len(pareto_front([(t.values[0], t.values[1]) for t in done])) >= len(front)
    assert (tmp_path / "pareto.png").is_file()


@needs_bench
def test_cli_runs_and_a_second_run_adds_trials(tmp_path, capsys):
    from deepmad_nni.cli import main
    argv = ["tune", "--family", "nas-bench-macro", "--flops", "60e6", "--params", "1.5e6", "--evaluator",
            "nas-bench-macro", "--benchmark-path", str(BENCH), "--storage", f"sqlite:///{tmp_path / 's.db'}",
            "--study-name", "cli", "--n-trials", "3", "--out", str(tmp_path / "out"), "--seed", "0", "--no-plots"]
    assert main(argv) == 0
    assert main(argv) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["trials"] == {"COMPLETE": 6}
    assert "trial 5 COMPLETE" in capsys.readouterr().out
    study = optuna.load_study(study_name="cli", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert len(study.trials) == 6


@pytest.mark.parametrize("kwargs, match", [
    ({"ranges": "x"}, "ranges must be a SearchRanges"),
    ({"evaluator": "no-such-evaluator"}, "evaluator must be one of"),
    ({"evaluator": "no_such_module_xyz:f"}, "cannot import module"),
    ({"benchmark_path": "/nonexistent/nas-bench-macro.json"}, "benchmark_path must point to"),
    ({"n_trials": 0}, "n_trials must be a positive integer"),
    ({"flops": -1}, "flops must be a positive finite number"),
    ({"storage": "study.db"}, "storage must be an Optuna RDB URL"),
    ({"sampler": "grid"}, "sampler must be one of"),
    ({"pruner": "never"}, "pruner must be one of"),
])
def test_bad_input_gives_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tune("nas-bench-macro", **{**BUDGET, "n_trials": 1, "progress": False, **kwargs})


@pytest.mark.parametrize("kwargs, match", [
    ({"rho": (2.0, 0.1)}, "rho is an empty range"),
    ({"beta": (5, 1)}, "beta is an empty range"),
    ({"alpha_last": (0, 8)}, "alpha_last is log-uniform"),
    ({"alpha_others": (3, 2)}, "alpha_others is an empty range"),
    ({"rho": (0.1,)}, "rho must be a"),
])
def test_empty_or_malformed_ranges(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchRanges(**kwargs)


def test_evaluator_family_mismatch_and_changed_problem(tmp_path):
    if BENCH is not None:
        with pytest.raises(ValueError, match="needs family 'nas-bench-macro'"):
            tune("resnet-bottleneck-cifar", flops=5e8, benchmark_path=BENCH, n_trials=1, progress=False)
    storage = f"sqlite:///{tmp_path / 'x.db'}"
    tune("nas-bench-macro", **BUDGET, evaluator=lambda a: 1.0, storage=storage, study_name="s", n_trials=1,
         progress=False)
    with pytest.raises(ValueError, match="was created with flops"):
        tune("nas-bench-macro", flops=50e6, params=1.5e6, evaluator=lambda a: 1.0, storage=storage, study_name="s",
             n_trials=1, progress=False)
