"""The training track's problem: real training of NAS-Bench-Macro-space networks (tiny data: digits)."""
import math
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytest.importorskip("nni")
pytest.importorskip("sklearn")

from deepmad_nni.compare import Budget, run_deepmad, run_nni_strategy  # noqa: E402
from deepmad_nni.compare import strategies as S  # noqa: E402
from deepmad_nni.compare.records import summarize  # noqa: E402
from deepmad_nni.compare.train_track import TrainingProblem  # noqa: E402


@pytest.fixture(scope="module")
def problem():
    from deepmad_nni.data import load_dataset
    data = load_dataset("digits", train_size=256, test_size=128, resolution=16, val_fraction=0.25)
    return TrainingProblem(Budget("12M", flops=12e6), data=data, epochs=1, batch_size=32, device="cpu")


def test_training_track_random_and_deepmad(problem):
    rnd = run_nni_strategy(problem, "random", S.NNI_STRATEGIES["random"](0), n_max=2, seed=0)
    dm = run_deepmad(problem, n_max=1)
    for rec in (rnd, dm):
        assert len(rec.candidates) == len({c.arch for c in rec.candidates}) >= 1
        for c in rec.candidates:
            assert 0 <= c.accuracy <= 100 and c.gpu_s > 0  # measured wall time of real training
            assert c.flops <= 12e6 and (c.flops, c.params) == problem.flops_params(
                {f"layer{i}": int(ch) for i, ch in enumerate(c.arch)})
        assert math.isnan(rec.reference_accuracy) and rec.device
    rows = summarize([rnd, dm], {"random": [2], "deepmad": [0, 1]})
    best = max(c.accuracy for r in (rnd, dm) for c in r.candidates)
    assert all(r["reference"] == best and r["regret"] >= 0 for r in rows)
    assert min(r["regret"] for r in rows) == 0


def test_training_deepmad_uses_the_dataset_family(problem):
    import dataclasses

    from deepmad_nni.benchmarks.nas_bench_macro import choices_of_key
    from deepmad_nni.core import get_family, score
    samples, info = problem.deepmad_samples(1)
    key = "".join(str(samples[0][f"layer{i}"]) for i in range(8))
    family = dataclasses.replace(get_family("nas-bench-macro"), resolution=16, in_channels=1)
    s = score(family.architecture(choices_of_key(key)))
    # the 16x16 grey family: the core's counts equal NNI's profilers on the 1-channel space
    assert (s.flops, s.params) == problem.flops_params(samples[0]) and s.flops <= 12e6
    assert info["status"] == "optimal"


def test_training_track_runs_mathnas_at_the_datasets_input(problem):
    from deepmad_nni.compare.mathnas_track import input_size, mathnas_unavailable, run_mathnas
    assert input_size(problem) == (1, 1, 16, 16) and not mathnas_unavailable(problem)
    rec = run_mathnas(problem, n_max=18, seed=0)       # 17 estimate evaluations, then the ILP's optimum
    assert len(rec.candidates) == 18 and "estimate evaluations" in rec.note
    for c in rec.candidates:
        assert 0 <= c.accuracy <= 100 and c.gpu_s > 0
        assert c.flops <= 12e6 and (c.flops, c.params) == problem.flops_params(
            {f"layer{i}": int(ch) for i, ch in enumerate(c.arch)})
