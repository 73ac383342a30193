"""The training track's one-shot strategies (DARTS, GumbelDARTS, RandomOneShot) and the package's CIFAR-scale
spaces (tiny data: digits, 1 epoch)."""
import json
import math
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytest.importorskip("nni")
pytest.importorskip("pytorch_lightning")
pytest.importorskip("sklearn")

from deepmad_nni.compare import Budget, run_deepmad, run_nni_strategy  # noqa: E402
from deepmad_nni.compare import strategies as S  # noqa: E402
from deepmad_nni.compare.oneshot import oneshot_unavailable, run_oneshot  # noqa: E402
from deepmad_nni.compare.records import summarize  # noqa: E402
from deepmad_nni.compare.train_track import TrainingProblem, space_median_flops  # noqa: E402

PACKAGE_SPACE = "resnet-basic-cifar-small"


@pytest.fixture(scope="module")
def data():
    from deepmad_nni.data import load_dataset
    return load_dataset("digits", train_size=256, test_size=128, resolution=16, val_fraction=0.25)


@pytest.fixture(scope="module")
def macro(data):
    return TrainingProblem(Budget("12M", flops=12e6), data=data, epochs=1, batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def package(data):
    median = space_median_flops(PACKAGE_SPACE, data)
    return TrainingProblem(Budget("median", flops=median), data=data, epochs=1, batch_size=32, device="cpu",
                           space=PACKAGE_SPACE)


def _check_oneshot(problem, record, name):
    assert record.strategy == name and len(record.candidates) == 1
    cand, note = record.candidates[0], json.loads(record.note)
    sample = json.loads(cand.arch) if cand.arch.startswith("{") else {
        f"layer{i}": int(ch) for i, ch in enumerate(cand.arch)}
    assert (cand.flops, cand.params) == problem.flops_params(sample)  # figures of the exported network
    assert cand.gpu_s == pytest.approx(note["supernet_s"], abs=1e-3) and cand.gpu_s > 0  # measured supernet time
    assert note["final_training_s"] > 0 and 0 <= cand.accuracy <= 100
    assert note["within_budget"] == problem.within_budget(sample)
    assert record.wall_s >= cand.gpu_s + note["final_training_s"] - 1e-3
    row, = summarize([record], {name: [1]})
    assert row["trained"] == 1 and row["gpu_hours"] == pytest.approx(cand.gpu_s / 3600)


@pytest.mark.parametrize("name", S.ONESHOT)
def test_oneshot_strategy_on_the_macro_space(macro, name):
    assert oneshot_unavailable(name, macro) == ""
    record = run_oneshot(macro, name, n_max=1, seed=0)
    _check_oneshot(macro, record, name)
    if name == "random-oneshot":  # the only one-shot strategy with a budget: its export respects it
        assert json.loads(record.note)["within_budget"] and record.candidates[0].flops <= 12e6


def test_package_space_deepmad_random_and_darts(package):
    import torch

    from deepmad_nni.core import score
    assert package.space_size == 512 and package.space_in_channels == 3
    rnd = run_nni_strategy(package, "random", S.NNI_STRATEGIES["random"](0), n_max=2, seed=0)
    dm = run_deepmad(package, n_max=1)
    for rec in (rnd, dm):
        assert len(rec.candidates) >= 1 and rec.device
        for c in rec.candidates:
            sample = json.loads(c.arch)
            arch = package._package.architecture(sample)
            assert arch.in_channels == 1 and arch.resolution == 16
            model = package._package.build(sample)  # the network trained: counted as the core counts it
            assert sum(p.numel() for p in model.parameters()) == c.params == score(arch).params
            assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 10)
            assert c.flops <= package.budget.flops and c.gpu_s > 0 and 0 <= c.accuracy <= 100
    assert json.loads(dm.note)["status"] == "optimal"
    _check_oneshot(package, run_oneshot(package, "darts", n_max=1, seed=0), "darts")


def test_oneshot_names_and_skips(macro):
    assert set(S.ONESHOT) <= set(S.KNOWN) and not set(S.ONESHOT) & set(S.ALL)  # opt-in, not in the default
    assert S.check_strategies(["darts", "gumbel-darts", "random-oneshot"]) == list(S.ONESHOT)

    class Bench:
        track = "nas-bench-macro"
    assert "trains nothing" in oneshot_unavailable("darts", Bench())
    with pytest.raises(ValueError, match="space must be"):
        TrainingProblem(Budget("b", flops=1e6), data=macro.data, space="resnet-bottleneck-lite-224")


def test_compare_training_track_on_a_package_space(tmp_path, data, monkeypatch):
    import deepmad_nni.data
    from deepmad_nni.compare.runner import compare
    monkeypatch.setattr(deepmad_nni.data, "load_dataset", lambda *a, **k: data)  # digits in place of Fashion-MNIST
    msgs = []
    out = compare(track="fashion-mnist", out_dir=tmp_path, strategies=["deepmad", "random-oneshot"], seeds=1,
                  ns=(1,), training={"space": "mbconv-se-cifar-small", "epochs": 1, "batch_size": 32},
                  progress=msgs.append)
    rows = {(r["strategy"], r["N"]): r for r in out["rows"]}
    assert set(rows) == {("deepmad", 0), ("deepmad", 1), ("random-oneshot", 1)}
    assert rows[("random-oneshot", 1)]["trained"] == 1 and rows[("random-oneshot", 1)]["gpu_hours"] > 0
    assert all(not math.isnan(r["accuracy"]) and r["regret"] >= 0 for r in out["rows"])
    assert "space: mbconv-se-cifar-small" in out["markdown"].read_text()
    assert json.loads((tmp_path / "settings.json").read_text())["training"]["space"] == "mbconv-se-cifar-small"
    compare(track="fashion-mnist", out_dir=tmp_path, strategies=["deepmad", "random-oneshot"], seeds=1, ns=(1,),
            training={"space": "mbconv-se-cifar-small", "epochs": 1, "batch_size": 32}, progress=msgs.append)
    assert sum("done before, skipped" in m for m in msgs) == 2  # resumed: nothing trained again
