"""The training track on SPACH (``--space spach-cifar`` / ``spach-cifar-conv``): NNI's profilers count, candidates
are ``space.freeze(sample)`` trained by the track's routine, DeepMAD reads only the conv-only subspace (tiny data:
digits, 1 epoch; Fashion-MNIST end to end where the Debian package is installed)."""
import dataclasses
import json
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytest.importorskip("nni")
pytest.importorskip("sklearn")

from deepmad_nni.compare import Budget, run_deepmad, run_nni_strategy  # noqa: E402
from deepmad_nni.compare import strategies as S  # noqa: E402
from deepmad_nni.compare.runner import _unavailable  # noqa: E402
from deepmad_nni.compare.train_track import TrainingProblem  # noqa: E402

MACS = {"count_normalization": False, "count_activation": False, "count_bias": False}
DEEPMADS = (S.DEEPMAD,) + S.DEEPMAD_LOOPS


@pytest.fixture(scope="module")
def data():
    from deepmad_nni.data import load_dataset
    return load_dataset("digits", train_size=256, test_size=128, resolution=16, val_fraction=0.25)


def _problem(data, space, flops):
    return TrainingProblem(Budget(f"{flops / 1e6:g}M", flops=flops), data=data, epochs=1, batch_size=32,
                           device="cpu", space=space)


@pytest.fixture(scope="module")
def spach(data):
    return _problem(data, "spach-cifar", 5e6)


@pytest.fixture(scope="module")
def conv(data):
    return _problem(data, "spach-cifar-conv", 3.8e6)


def _oracle(mixers, sample):
    """NNI's profilers on the frozen network of a SPACH space built here for the 1 x 16 x 16 digits."""
    import torch
    from nni.nas.profiler.pytorch.flops import FlopsProfiler

    from search_spaces.spach import SPACH_CONFIGS, SpachSpace
    config = dataclasses.replace(SPACH_CONFIGS["spach-cifar"], in_channels=1, resolution=16, mixers=mixers)
    model = SpachSpace(config).freeze(sample)
    x = torch.zeros(1, 1, 16, 16)
    assert model(x).shape == (1, 10)
    return float(FlopsProfiler(model, x, **MACS).expression), float(sum(p.numel() for p in model.parameters()))


def _check_candidates(problem, record, mixers):
    assert record.candidates and len({c.arch for c in record.candidates}) == len(record.candidates)
    for c in record.candidates:
        sample = json.loads(c.arch)
        assert 0 <= c.accuracy <= 100 and c.gpu_s > 0     # really trained
        assert c.flops <= problem.budget.flops
        assert (c.flops, c.params) == problem.flops_params(sample) == _oracle(mixers, sample)


def test_space_is_built_for_the_datasets_input(spach, conv):
    assert spach.space_in_channels == 1 and spach.profiler_input_size == (1, 1, 16, 16)
    assert spach.space_size == 2 ** 6 * 3 ** 3 and conv.space_size == 2 ** 6
    assert spach.deepmad_family() is None


def test_random_trains_two_candidates_counted_by_nni(spach):
    record = run_nni_strategy(spach, "random", S.NNI_STRATEGIES["random"](0), n_max=2, seed=0)
    assert len(record.candidates) == 2 and not record.note
    _check_candidates(spach, record, ("conv", "attention", "mlp"))


def test_deepmad_skipped_on_the_full_space_with_the_readers_reason(spach):
    for name in DEEPMADS:
        why = _unavailable(name, spach)
        assert why.startswith(f"{name} skipped: DeepMAD's reader refuses space 'spach-cifar'") and "matmul" in why
        assert "\n" not in why
    assert not any(_unavailable(name, spach) for name in ("random", "grid", "evolution", "tpe", S.MATHNAS))


def test_oneshot_skipped_on_the_custom_mixers(spach, conv):
    pytest.importorskip("pytorch_lightning")
    for problem in (spach, conv):
        for name in S.ONESHOT:
            why = _unavailable(name, problem)
            assert why.startswith(f"{name} skipped: it cannot build a supernet of space '{problem.space_name}'")


def test_mathnas_runs_at_the_datasets_input(spach):
    from deepmad_nni.compare.mathnas_track import input_size, mathnas_unavailable, run_mathnas
    assert input_size(spach) == (1, 1, 16, 16) and not mathnas_unavailable(spach)
    record = run_mathnas(spach, n_max=14, seed=0)   # 1 + 3 * 1 + 3 * 1 + 3 * 2 = 13 estimates, then the ILP's best
    assert len(record.candidates) == 14 and record.note.startswith("13 estimate evaluations")
    _check_candidates(spach, record, ("conv", "attention", "mlp"))


def test_conv_subspace_runs_deepmad_through_the_reader(conv):
    from deepmad_nni.compare.optuna_track import run_deepmad_loop
    from deepmad_nni.nas.route import ReaderRoute
    assert not any(_unavailable(name, conv) for name in DEEPMADS)
    route = conv.deepmad_route()
    assert isinstance(route, ReaderRoute)
    record = run_deepmad(conv, n_max=2)
    assert len(record.candidates) == 2 and json.loads(record.note)["status"] == "optimal"
    _check_candidates(conv, record, ("conv",))
    for c in record.candidates:   # the reader's counts at the dataset's input are the filter's
        s = route.score(json.loads(c.arch))
        assert (s.flops, s.params) == (c.flops, c.params)
    loop = run_deepmad_loop(conv, S.DEEPMAD_EVOLUTION, n_max=1, seed=0)
    _check_candidates(conv, loop, ("conv",))


def test_a_resolution_spach_cannot_take_is_named():
    from deepmad_nni.compare.train_spaces import SpachTrackSpace
    with pytest.raises(ValueError, match=r"'spach-cifar' cannot take the dataset's 1x14x14 input: resolution must "
                                         r"be a multiple of .* = 8, but got 14"):
        SpachTrackSpace("spach-cifar", in_channels=1, resolution=14, num_classes=10)
    with pytest.raises(ValueError, match=r"one of \[.*'spach-cifar', 'spach-cifar-conv'\], but got 'spach'"):
        SpachTrackSpace("spach", in_channels=1, resolution=16, num_classes=10)


def test_cli_on_fashion_mnist(tmp_path, capsys):
    from deepmad_nni.data import FASHION_MNIST_DIR
    if not (FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    from deepmad_nni.cli import main
    argv = ["compare", "--track", "fashion-mnist", "--space", "spach-cifar", "--strategies", "random,deepmad",
            "--seeds", "1", "--ns", "1", "--train-size", "64", "--epochs", "1", "--flops", "100e6",
            "--device", "cpu", "--out", str(tmp_path)]
    assert main(argv) == 0
    settings = json.loads((tmp_path / "settings.json").read_text())["training"]
    assert settings["space"] == "spach-cifar" and settings["resolution"] == 56   # SPACH's default side
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [r["strategy"] for r in runs] == ["random"] and len(runs[0]["candidates"]) == 1
    report = (tmp_path / "compare.md").read_text()
    assert "space: spach-cifar" in report and "Skipped: deepmad skipped: DeepMAD's reader refuses" in report
    capsys.readouterr()
    assert main(argv) == 0                                     # resumes: nothing trained again
    assert "done before, skipped" in capsys.readouterr().err
