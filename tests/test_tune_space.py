"""``tune(space=...)`` / ``deepmad-nni tune --space``: the Optuna loop over an NNI model space (route_of), with a
callable evaluator of the frozen model, an SQLite study that resumes, one evaluation per network, clear errors."""
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
optuna = pytest.importorskip("optuna")
pytest.importorskip("nni")

from search_spaces import get_space  # noqa: E402

from deepmad_nni.nas.route import route_of  # noqa: E402
from deepmad_nni.optuna_loop import tune  # noqa: E402

NAME = "resnet-basic-cifar-small"  # 512 networks at 3x32x32
FLOPS = 80e6


class CountingEvaluator:
    """accuracy := params / 1e4 of the frozen model; remembers the network of every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, model):
        from torch import nn
        assert isinstance(model, nn.Module)
        n = sum(p.numel() for p in model.parameters())
        self.calls.append(n)
        return n / 1e4


def _done(study):
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def test_space_study_evaluates_each_network_once_and_resumes(tmp_path):
    space, ev = get_space(NAME), CountingEvaluator()
    storage = f"sqlite:///{tmp_path / 'space.db'}"
    kwargs = dict(space=space, flops=FLOPS, evaluator=ev, storage=storage, study_name="s", seed=0, progress=False,
                  pruner="none")
    first = tune(n_trials=8, out_dir=tmp_path / "out", **kwargs)
    trials = _done(first.study)
    assert len(trials) == 8
    route = route_of(space)
    for t in trials:
        a = t.user_attrs
        assert a["design_key"] == a["network"] == route.network(a["sample"])  # the cache key is the route's
        score = route.score(a["sample"])
        assert (a["flops"], a["params"]) == (score.flops, score.params) and score.flops <= FLOPS
        assert t.value == pytest.approx(score.params / 1e4)  # the evaluator got the frozen model of the sample
    misses = [t.user_attrs["design_key"] for t in trials if t.user_attrs["cache"] == "miss"]
    assert len(misses) == len(set(misses)) == len(ev.calls)  # no network evaluated twice
    assert set(misses) == {t.user_attrs["design_key"] for t in trials}
    assert first.best_sample == max(trials, key=lambda t: t.value).user_attrs["sample"]
    assert first.best_architecture is None and set(first.plots) == {"history", "rho_accuracy", "pareto"}
    rho_low, rho_high = first.study.user_attrs["deepmad"]["ranges"]["rho"]
    reach = route.rho_range(flops=FLOPS)
    assert (rho_low, rho_high) == (reach.low, reach.high)  # rho_0's range computed for the space and budget
    defaults = {"rho_0": reach.clip(route.default_rho(reach)), "beta": 10.0, "alpha_last": 8.0, "alpha_1": 1.0,
                "alpha_2": 1.0}
    assert trials[0].params == defaults  # a new study starts from the paper's point (rho_0 clipped into range)

    calls = len(ev.calls)
    second = tune(n_trials=4, **kwargs)  # same storage and study: resumes, adds 4 trials
    assert len(second.study.trials) == 12
    keys = [t.user_attrs["design_key"] for t in _done(second.study) if t.user_attrs["cache"] == "miss"]
    assert len(keys) == len(set(keys)) == len(ev.calls) >= calls


def test_nni_evaluator_gets_the_frozen_model_and_the_sample():
    import nni
    from nni.nas.evaluator import FunctionalEvaluator
    seen = []

    def fn(model):
        seen.append(nni.get_current_parameter())
        n = sum(p.numel() for p in model.parameters())
        nni.report_intermediate_result(n / 2e4)
        nni.report_final_result(n / 1e4)

    result = tune(space=get_space(NAME), flops=FLOPS, evaluator=FunctionalEvaluator(fn), n_trials=2, seed=0,
                  progress=False, pruner="none")
    trials = _done(result.study)
    assert len(trials) == 2 and seen[0] == trials[0].user_attrs["sample"]
    assert trials[0].intermediate_values == {0: pytest.approx(trials[0].value / 2)}


@pytest.mark.parametrize("kwargs, match", [
    ({"family": "nas-bench-macro"}, "family and space cannot both be given"),
    ({"evaluator": "training"}, "evaluator 'training' evaluates architectures of a core family"),
    ({"evaluator": "nas-bench-macro"}, "evaluator 'nas-bench-macro' evaluates architectures"),
    ({"evaluator": None}, r"evaluator \(--evaluator\) must be given with a space"),
    ({"benchmark_path": "x.json"}, r"benchmark_path \(--benchmark-path\)"),
    ({"evaluator_options": {"in_channels": 1}}, r"evaluator_options \['in_channels'\]"),
    ({"space": "nosuchmodule_xyz:x"}, "space 'nosuchmodule_xyz:x': cannot import module 'nosuchmodule_xyz'"),
    ({"space": "search_spaces:CONFIGS"}, "space must be an NNI ModelSpace"),
    ({"space": 3}, "space must be an NNI ModelSpace"),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = {"space": get_space(NAME), "flops": FLOPS, "evaluator": lambda m: 1.0, "n_trials": 1, "progress": False,
            **kwargs}
    with pytest.raises(ValueError, match=match):
        tune(**args)


def test_cli_space_runs_and_bad_space_is_refused(tmp_path, capsys):
    from deepmad_nni.cli import main
    argv = ["tune", "--flops", "80e6", "--evaluator", "tests_tune_space_evaluator:params_accuracy", "--n-trials", "2",
            "--out", str(tmp_path / "out"), "--no-plots", "--quiet", "--seed", "0"]
    (tmp_path / "tests_tune_space_evaluator.py").write_text(
        "def params_accuracy(model):\n    return sum(p.numel() for p in model.parameters()) / 1e4\n")
    import sys
    sys.path.insert(0, str(tmp_path))
    try:
        assert main(argv + ["--space", "search_spaces.nas_bench_macro:NasBenchMacroSpace"]) == 0
        assert '"COMPLETE": 2' in capsys.readouterr().out
        assert main(argv + ["--space", "nosuchmodule_xyz:x"]) == 2
        err = capsys.readouterr().err
        assert "--space 'nosuchmodule_xyz:x': cannot import module 'nosuchmodule_xyz'" in err
        assert main(argv + ["--space", "search_spaces.nas_bench_macro:NasBenchMacroSpace", "--family",
                            "nas-bench-macro"]) == 2
        assert "--family and --space cannot both be given" in capsys.readouterr().err
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("tests_tune_space_evaluator", None)
