"""The NNI NAS-Bench-Macro space against the benchmark file: FLOPs/params by NNI's profilers and by the core."""
import os
import random

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("nni")

from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, architecture_of_key, default_path  # noqa: E402
from deepmad_nni.core import score  # noqa: E402
from search_spaces.nas_bench_macro import (LABELS, NasBenchMacroSpace, key_of_sample,  # noqa: E402
                                           sample_of_key)

PATH = default_path()
needs_bench = pytest.mark.skipif(PATH is None, reason="NAS-Bench-Macro file not found (set $DEEPMAD_NAS_BENCH_MACRO)")


@pytest.fixture(scope="module")
def space():
    return NasBenchMacroSpace()


@pytest.fixture(scope="module")
def profilers(space):
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler
    x = torch.zeros(1, 3, 32, 32)
    return (FlopsProfiler(space, x, count_normalization=False, count_activation=False, count_bias=False),
            NumParamsProfiler(space, x))


@pytest.fixture(scope="module")
def bench():
    return NasBenchMacro(PATH)


def test_space_labels_are_the_eight_layers(space):
    simplified = space.simplify()
    assert tuple(simplified) == LABELS
    assert all(list(simplified[label].values) == [0, 1, 2] for label in LABELS)


def test_key_sample_round_trip():
    for key in ("00000000", "01201122", "22222222"):
        assert key_of_sample(sample_of_key(key)) == key
    with pytest.raises(ValueError, match="key"):
        sample_of_key("0120112")
    with pytest.raises(ValueError, match="sample"):
        key_of_sample({"layer0": 1})
    with pytest.raises(ValueError, match="sample"):
        key_of_sample({label: 3 for label in LABELS})


@needs_bench
def test_profilers_match_benchmark_on_every_key(bench, profilers):
    flops, params = profilers
    wrong = [k for k, e in bench.entries.items()
             if flops.profile(sample_of_key(k)) != e.flops or params.profile(sample_of_key(k)) != e.params]
    assert len(bench) == 6561 and wrong == []


@needs_bench
def test_core_family_matches_benchmark(bench):
    keys = random.Random(0).sample(sorted(bench.entries), 200) + ["00000000", "22222222"]
    for key in keys:
        s = score(architecture_of_key(key))
        assert (s.flops, s.params) == (bench[key].flops, bench[key].params), key


@needs_bench
def test_frozen_model_runs_and_counts_params(space, bench):
    for key in ("00000000", "10201012", "22222222"):
        model = space.freeze(sample_of_key(key))
        assert sum(p.numel() for p in model.parameters()) == bench[key].params
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
