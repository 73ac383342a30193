"""Real ``nnictl create`` experiments with the registered DeepMAD tuner: 2 tiny trials on digits, to DONE;
the documented smoke config (3 trials on Fashion-MNIST, about a minute) learns and reports DeepMAD's figures."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nni")
yaml = pytest.importorskip("yaml")

from deepmad_nni.core import get_family, score, solve  # noqa: E402
from deepmad_nni.tuner import architecture_from_parameters, family_from_search_space  # noqa: E402
from deepmad_nni.data import FASHION_MNIST_DIR  # noqa: E402
from deepmad_nni.tuner.nnictl_session import NnictlSession, REPO_ROOT, prepare_config  # noqa: E402

if shutil.which("node") is None and not (Path(sys.executable).parent / "nnictl").exists():
    pytest.skip("nnictl is not installed", allow_module_level=True)


def choice(*values):
    return {"_type": "choice", "_value": list(values)}


SPACE = {"s0_width": choice(8), "s6_width": choice(32, 48)}
for j in range(1, 6):
    SPACE.update({f"s{j}_width": choice(8, 16), f"s{j}_depth": choice(1), f"s{j}_kernel": choice(3, 5),
                  f"s{j}_expansion": choice(2)})
CLASS_ARGS = {"family": "mbv2-se-cifar", "resolution": 8, "in_channels": 1, "num_classes": 10,
              "flops": 2.0e5, "rho": 1.0, "top_k": 3}
TRIAL = (f"{sys.executable} -m deepmad_nni.tuner.trial --family mbv2-se-cifar --dataset digits --train-size 300 "
         "--test-size 100 --epochs 1 --batch-size 32 --lr 0.1 --threads 1")


def write_experiment(tmp_path, class_args, name="deepmad-test", max_trials=2):
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    config = {"experimentName": name, "searchSpaceFile": str(tmp_path / "space.json"), "trialCommand": TRIAL,
              "trialCodeDirectory": str(REPO_ROOT), "trialConcurrency": 1, "maxTrialNumber": max_trials,
              "experimentWorkingDirectory": str(tmp_path / "experiments"),
              "tuner": {"name": "DeepMAD", "classArgs": class_args}, "trainingService": {"platform": "local"}}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_registered_tuner_runs_two_trials_to_done(tmp_path):
    session = NnictlSession(tmp_path)
    try:
        session.register()
        assert "DeepMAD" in (session.config_dir / "registered_algorithms.yml").read_text()
        exp_id = session.create(write_experiment(tmp_path, CLASS_ARGS))
        status = session.wait(exp_id, timeout=240)
        assert status["status"] == "DONE", status
        records = session.export(exp_id, tmp_path / "export.json")
    finally:
        session.close()
    assert not session.leftover_pids()
    assert len(records) == 2
    template = get_family("mbv2-se-cifar")
    overrides = {"resolution": 8, "in_channels": 1, "num_classes": 10}
    fam = family_from_search_space(SPACE, template, **overrides)
    best = solve(fam, flops=2.0e5, rho=1.0, top_k=2)
    by_id = sorted(records, key=lambda r: r["trialJobId"])
    proposed = {json.dumps(r["parameter"], sort_keys=True): r["value"] for r in by_id}
    for design in best.designs:  # the two trials ran the solver's two best designs
        arch = design.architecture
        params = next(json.loads(k) for k in proposed
                      if architecture_from_parameters(json.loads(k), template, **overrides) == arch)
        value = proposed[json.dumps(params, sort_keys=True)]
        assert value["flops"] == score(arch).flops and value["params"] == score(arch).params
        assert 0.0 <= value["default"] <= 1.0 and value["device"] == "cpu" and value["epochs"] == 1
        assert value["wall_time_s"] > 0 and value["dataset"] == "digits"
    assert (tmp_path / "home" / "nni-experiments").is_dir()  # NNI's registry went to the temp HOME


DEEPMAD_KEYS = ("default", "test_accuracy", "flops", "params", "rho", "effectiveness", "entropy", "q", "objective")


@pytest.mark.skipif(not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)")
def test_smoke_config_learns_and_reports_deepmad_figures(tmp_path):
    """experiments/nnictl/config_smoke.yml as docs/nnictl.md runs it (working directory moved into tmp_path)."""
    config = prepare_config(REPO_ROOT / "experiments" / "nnictl" / "config_smoke.yml", tmp_path / "smoke.yml",
                            workdir=tmp_path)
    session = NnictlSession(tmp_path)
    try:
        session.register()
        exp_id = session.create(config)
        status = session.wait(exp_id, timeout=240)
        trials = session.trials(exp_id)  # GET /api/v1/nni/trial-jobs, as the web UI reads it
        session.nnictl("experiment", "export", exp_id, "--type", "csv", "--filename", tmp_path / "smoke.csv")
        dispatcher_log = (session.log_dir(exp_id) / "dispatcher.log").read_text()
    finally:
        session.close()
    assert not session.leftover_pids()
    assert status["status"] == "DONE", status
    assert len(trials) == 3 and all(t["status"] == "SUCCEEDED" for t in trials), [t["status"] for t in trials]
    template = get_family("mbv2-se-cifar")
    finals = []
    for t in trials:
        final = json.loads(json.loads(t["finalMetricData"][-1]["data"]))
        assert set(DEEPMAD_KEYS) <= set(final), sorted(final)
        params = json.loads(t["hyperParameters"][0])["parameters"]
        s = score(architecture_from_parameters(params, template, resolution=14, in_channels=1, num_classes=10))
        assert (final["flops"], final["params"]) == (s.flops, s.params)
        assert final["objective"] == pytest.approx(s.objective) and final["rho"] == final["effectiveness"]
        assert final["dataset"] == "fashion-mnist" and final["epochs"] == 2 and final["train_images"] == 1600
        finals.append(final)
    assert max(f["default"] for f in finals) > 0.3  # chance is 0.1; about 0.71-0.76 was seen
    with open(tmp_path / "smoke.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and set(DEEPMAD_KEYS) <= set(rows[0]) and "s6_width" in rows[0]
    # The solver's own figures (status, rank, bound) of every proposal are in the dispatcher log.
    assert dispatcher_log.count("Trial parameter ") == 3 and "'status': 'optimal'" in dispatcher_log
    assert (tmp_path / "experiments" / exp_id / "db").is_dir() and (tmp_path / "home" / "nni-experiments").is_dir()


def test_bad_class_args_rejected_at_create_time(tmp_path):
    bad = {**CLASS_ARGS, "rho": -1}
    config = write_experiment(tmp_path, bad, name="bad-rho")
    check = subprocess.run([sys.executable, "-m", "deepmad_nni.tuner.check", str(config)], capture_output=True,
                           text=True, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert check.returncode == 1 and "classArgs.rho" in check.stderr
    for args, name in [({k: v for k, v in CLASS_ARGS.items() if k != "flops"}, "classArgs.flops"),
                       ({**CLASS_ARGS, "family": "no-such-family"}, "classArgs.family")]:
        p = write_experiment(tmp_path, args, name="bad")
        out = subprocess.run([sys.executable, "-m", "deepmad_nni.tuner.check", str(p)], capture_output=True,
                             text=True, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
        assert out.returncode == 1 and name in out.stderr
    # Through nnictl create itself: the experiment turns ERROR and NNI's log names the argument.
    session = NnictlSession(tmp_path)
    try:
        session.register()
        exp_id = session.create(config)
        status = session.wait(exp_id, timeout=60)
        log = (session.log_dir(exp_id) / "nnimanager.log").read_text()
        trials = session.trials(exp_id)
    finally:
        session.close()
    assert status["status"] == "ERROR" and trials == []
    assert "classArgs.rho must be a positive finite number, but got -1" in log
    assert not session.leftover_pids()


def test_registered_validator_is_what_nnis_schema_check_calls(tmp_path, monkeypatch):
    session = NnictlSession(tmp_path)
    session.register()
    monkeypatch.setenv("NNI_CONFIG_DIR", str(session.config_dir))
    from nni.tools.nnictl.config_schema import AlgoSchema
    from schema import SchemaError
    schema = AlgoSchema("tuner")
    schema.validate({"builtinTunerName": "DeepMAD", "classArgs": CLASS_ARGS})
    with pytest.raises(SchemaError, match="classArgs.family"):
        schema.validate({"builtinTunerName": "DeepMAD", "classArgs": {**CLASS_ARGS, "family": "nope"}})


def test_training_service_examples_validate(tmp_path):
    """The remote / Kubernetes blocks in docs/nnictl.md are valid NNI 3.0 configs on top of our configs."""
    import re
    from nni.experiment.config import ExperimentConfig
    text = (REPO_ROOT / "docs" / "nnictl.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "trainingService:" in b]
    assert [b["trainingService"]["platform"] for b in blocks] == ["remote", "kubeflow"]
    key = tmp_path / "id_ed25519"
    key.write_text("not a real key\n")
    for block in blocks:
        for machine in block["trainingService"].get("machineList", []):
            machine["sshKeyFile"] = str(key)
        config = yaml.safe_load((REPO_ROOT / "experiments" / "nnictl" / "config_deepmad.yml").read_text())
        config.update(block, searchSpaceFile=str(REPO_ROOT / "experiments" / "nnictl" / "search_space.json"),
                      trialCodeDirectory=str(REPO_ROOT))
        ExperimentConfig(**config).validate()
