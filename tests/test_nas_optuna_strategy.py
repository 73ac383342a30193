"""DeepMADOptuna and DeepMADEvolution: one new network per evaluation, studies that resume and share a storage,
rho ranges right by enumeration, clear errors."""
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

pytest.importorskip("nni")
pytest.importorskip("optuna")

from core_families import SMALL_FAMILIES  # noqa: E402
from deepmad_nni.core import Program  # noqa: E402
from deepmad_nni.core.rho_range import rho_range  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("family", SMALL_FAMILIES, ids=lambda f: f.name)
def test_rho_range_equals_enumeration(family):
    program = Program.create(family, rho=1e6)
    scores = [program.score(a) for a in family.enumerate()]
    flops = sorted(s.flops for s in scores)[len(scores) // 2]          # a budget half the family meets
    within = [s for s in scores if s.flops <= flops]
    best = max(within, key=lambda s: s.objective)
    reach = rho_range(family, flops=flops)
    assert reach.exact
    assert reach.low == pytest.approx(min(s.effectiveness for s in within))
    assert reach.high == pytest.approx(best.effectiveness)
    with pytest.raises(ValueError, match="flops"):
        rho_range(family, flops=min(s.flops for s in scores) * 0.5)


# -- a NAS-Bench-Macro problem driven through NNI's sequential engine -------------------------------------
def _problem(flops=60e6, params=1.5e6):
    from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, default_path
    from deepmad_nni.compare.bench_track import BenchmarkProblem
    from deepmad_nni.compare.harness import Budget
    if default_path() is None:
        pytest.skip("NAS-Bench-Macro table not found")
    return BenchmarkProblem(NasBenchMacro(default_path()), Budget("b", flops=flops, params=params))


def _run(problem, strategy, n):
    from deepmad_nni.compare.bench_track import network_of_key
    from deepmad_nni.compare.harness import run_nni_strategy
    record = run_nni_strategy(problem, "x", strategy, n_max=n, seed=0)
    assert not record.note, record.note
    return [network_of_key(c.arch) for c in record.candidates]


def test_optuna_every_trial_trains_a_new_network_and_starts_with_deepmad_top_k():
    from deepmad_nni import DeepMADOptuna
    from deepmad_nni.compare.bench_track import distinct_keys, network_of_key
    from deepmad_nni.core import solve
    problem = _problem()
    strategy = DeepMADOptuna(flops=60e6, params=1.5e6, seed=0)
    networks = _run(problem, strategy, 14)
    assert len(networks) == 14 == len(set(networks))
    top = solve("nas-bench-macro", flops=60e6, params=1.5e6, top_k=40)
    assert set(networks[:10]) == {network_of_key(k) for k in distinct_keys(top)[:10]}   # the paper's defaults
    low, high = strategy.ranges.rho
    reach = rho_range("nas-bench-macro", flops=60e6, params=1.5e6)
    assert low == pytest.approx(reach.low) and high >= reach.high
    trials = [t for t in strategy.study.trials if t.state.name == "COMPLETE"]
    assert len(trials) == 14 and all("deepmad" in t.user_attrs for t in trials)
    assert all(low <= t.params["rho_0"] <= high for t in trials)


def test_optuna_state_dict_resume_never_reevaluates(tmp_path):
    from deepmad_nni import DeepMADOptuna
    problem, storage = _problem(), f"sqlite:///{tmp_path / 'study.db'}"
    first = DeepMADOptuna(flops=60e6, params=1.5e6, storage=storage, study_name="s", seed=1, defaults=2)
    a = _run(problem, first, 4)
    second = DeepMADOptuna(flops=60e6, params=1.5e6, seed=1, defaults=2)
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    b = _run(problem, second, 4)
    assert len(set(a) | set(b)) == 8
    assert len(second.study.trials) >= 8


_WORKER = textwrap.dedent("""
    import json, os, signal, sys, warnings
    warnings.filterwarnings("ignore")
    sys.path.insert(0, {root!r})
    from deepmad_nni import DeepMADOptuna
    from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, default_path
    from deepmad_nni.compare.bench_track import BenchmarkProblem
    from deepmad_nni.compare.harness import Budget, run_nni_strategy
    storage, log, n, kill_after, seed = sys.argv[1:6]
    problem = BenchmarkProblem(NasBenchMacro(default_path()), Budget("b", flops=60e6, params=1.5e6))
    real = problem.evaluate
    done = [0]
    def evaluate(sample):
        if done[0] == int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)        # killed in the middle of an evaluation
        cand = real(sample)
        with open(log, "a") as f:
            f.write(cand.arch + "\\n")
        done[0] += 1
        return cand
    problem.evaluate = evaluate
    run_nni_strategy(problem, "w", DeepMADOptuna(flops=60e6, params=1.5e6, storage=storage, study_name="shared",
                                                 seed=int(seed), defaults=3), n_max=int(n), seed=0)
""")


def _worker(tmp_path, storage, log, n, kill_after=-1, seed=0):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(root=str(ROOT)))
    env = {**os.environ, "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), storage, str(log), str(n), str(kill_after), str(seed)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _networks(log):
    from deepmad_nni.compare.bench_track import network_of_key
    return [network_of_key(k) for k in Path(log).read_text().split()]


def test_killed_study_resumes_without_reevaluating(tmp_path):
    _problem()
    storage, log = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "evaluated.txt"
    killed = _worker(tmp_path, storage, log, n=10, kill_after=4)
    killed.communicate(timeout=300)
    assert killed.returncode != 0 and len(_networks(log)) == 4
    resumed = _worker(tmp_path, storage, log, n=5)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-2000:]
    networks = _networks(log)
    assert len(networks) == 9 == len(set(networks))


def test_two_workers_on_one_storage_never_evaluate_a_design_twice(tmp_path):
    _problem()
    storage, log = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "evaluated.txt"
    workers = [_worker(tmp_path, storage, log, n=6, seed=s) for s in (0, 1)]
    for w in workers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err[-2000:]
    networks = _networks(log)
    assert len(networks) == 12 == len(set(networks))


def test_evolution_seeded_by_deepmad_and_deterministic():
    from deepmad_nni import DeepMADEvolution
    from deepmad_nni.compare.bench_track import distinct_keys, network_of_key
    from deepmad_nni.core import solve
    problem = _problem()
    a = _run(problem, DeepMADEvolution(flops=60e6, params=1.5e6, initial=3, seed=0), 12)
    b = _run(problem, DeepMADEvolution(flops=60e6, params=1.5e6, initial=3, seed=0), 12)
    assert a == b and len(set(a)) == 12
    top = solve("nas-bench-macro", flops=60e6, params=1.5e6, top_k=12)
    assert a[:3] == [network_of_key(k) for k in distinct_keys(top)[:3]]


def test_bad_settings_name_the_setting():
    from deepmad_nni import DeepMADEvolution, DeepMADOptuna
    from deepmad_nni.nas.route import DeepMADInfeasible
    for kwargs, match in [({"rho": (0.5, 0.1)}, "rho is an empty range"), ({"beta": (5, 1)}, "beta"),
                          ({"alpha_last": (0, 8)}, "alpha_last"), ({"sampler": "cmaes-ish"}, "sampler"),
                          ({"storage": "study.db"}, "storage"), ({"mutation": "sometimes"}, "mutation"),
                          ({"candidates": 0}, "candidates"), ({"flops": -1}, "flops")]:
        with pytest.raises(ValueError, match=match):
            DeepMADOptuna(**{"flops": 60e6, **kwargs})
    with pytest.raises(ValueError, match="flops and params"):
        DeepMADOptuna()
    with pytest.raises(ValueError, match="sample_size"):
        DeepMADEvolution(flops=60e6, population_size=3, sample_size=5)
    from deepmad_nni.compare.harness import run_nni_strategy
    problem = _problem()
    for strategy in (DeepMADOptuna(flops=1e6), DeepMADEvolution(flops=1e6)):   # below the smallest network
        record = run_nni_strategy(problem, "x", strategy, n_max=2, seed=0)
        assert record.note.startswith("stopped by DeepMADInfeasible") and "flops" in record.note
        assert not record.candidates
    del DeepMADInfeasible


@pytest.mark.skipif(os.environ.get("DEEPMAD_SKIP_TS") == "1", reason="DEEPMAD_SKIP_TS=1: no NNI manager run")
def test_optuna_on_nni_default_engine_shows_hyperparameters_per_trial(tmp_path, monkeypatch):
    """NNI's default (ts) engine: the web UI's trial parameters hold each trial's rho_0, alpha, beta and
    figures; the study is a SQLite file in the experiment's directory."""
    import optuna
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.experiment import NasExperiment

    from deepmad_nni import DeepMADOptuna
    from deepmad_nni.nas.evaluators import report_params
    from deepmad_nni.nas.optuna_strategy import DB_NAME
    from deepmad_nni.nas.trial_info import INFO_KEY, design_sample
    from search_spaces import get_space
    from nni_ts import ts_config
    config, port = ts_config(tmp_path, monkeypatch, max_trial_number=3)
    strategy = DeepMADOptuna(flops=150e6, defaults=1, seed=0)
    exp = NasExperiment(get_space("resnet-basic-cifar-small"), FunctionalEvaluator(report_params), strategy, config)
    try:
        exp.run(port=port)
        jobs = exp.list_trial_jobs()
    finally:
        exp.stop()
    shown = [j.hyperParameters[0].parameters["sample"] for j in jobs]
    assert len(shown) == 3 and len({json.dumps(design_sample(s), sort_keys=True) for s in shown}) == 3
    for sample in shown:
        info = sample[INFO_KEY]
        assert {"trial", "rho0", "alpha", "beta", "objective", "entropy", "rho", "flops", "params"} <= set(info)
        assert info["flops"] <= 150e6 and info["rho"] <= info["rho0"] * (1 + 1e-9)
    db = tmp_path / exp.id / DB_NAME
    assert db.is_file()
    study = optuna.load_study(study_name=strategy.study_name, storage=f"sqlite:///{db}")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["rho_0"] for t in done) == pytest.approx(sorted(s[INFO_KEY]["rho0"] for s in shown))


def test_optuna_goes_on_by_mutation_when_the_program_has_no_new_design():
    """rho_0 pinned at the lowest rho the space reaches within the budget: the program soon runs out of
    designs and every further trial evaluates a new mutant of the best evaluated designs."""
    import nni
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import SimplifiedModelSpace

    from deepmad_nni import DeepMADOptuna
    from deepmad_nni.nas.route import route_of
    from deepmad_nni.nas.trial_info import INFO_KEY, design_sample
    from search_spaces import get_space

    def evaluate(model):
        nni.report_final_result(float(sum(p.numel() for p in model.parameters())))

    space = get_space("resnet-basic-cifar-small")
    low = route_of(space).rho_range(flops=150e6).low
    strategy = DeepMADOptuna(flops=150e6, rho=(low, low * (1 + 1e-9)), defaults=1, candidates=1, seed=0)
    strategy(SimplifiedModelSpace.from_model(space, FunctionalEvaluator(evaluate)),
             SequentialExecutionEngine(max_model_count=6))
    samples = [m.sample for m in strategy.list_models(sort=False)]
    assert len({json.dumps(design_sample(s), sort_keys=True) for s in samples}) == 6
    sources = [s[INFO_KEY]["source"] for s in samples]
    assert sources[0] == "program" and "mutation" in sources
    assert all(s[INFO_KEY]["flops"] <= 150e6 for s in samples)
