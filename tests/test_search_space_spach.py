"""SPACH space (search_spaces/spach.py): every choice builds, runs, trains one step, and NNI's profilers on the
space equal the frozen module's counts (params = sum(p.numel()); MACs = torch's FlopCounterMode / 2);
DeepMAD's reader refuses attention / token-MLP stages and reads the convolution-only subspace."""
import random
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nni")

from search_spaces import SPACH_CONFIGS, SpachConfig, SpachStage, spach_space  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
MACS = dict(count_normalization=False, count_activation=False, count_bias=False)
CIFAR = SPACH_CONFIGS["spach-cifar"]


def _samples(labels: dict, n_random: int = 3, seed: int = 0) -> list[dict]:
    """Every value of each label with the others at their first value, then seeded random samples."""
    first = {k: v[0] for k, v in labels.items()}
    out = [first] + [{**first, k: value} for k, values in labels.items() for value in values[1:]]
    rng = random.Random(seed)
    out += [{k: rng.choice(v) for k, v in labels.items()} for _ in range(n_random)]
    return out


def _ids(samples):
    return ["-".join(str(v) for v in s.values()) for s in samples]


CIFAR_SAMPLES = _samples(CIFAR.labels())


@pytest.fixture(scope="module")
def cifar():
    from nni.nas.profiler.pytorch.flops import FlopsParamsProfiler, FlopsProfiler
    space = spach_space("spach-cifar")
    x = torch.zeros(1, 3, 32, 32)
    return space, FlopsParamsProfiler(space, x), FlopsProfiler(space, x, **MACS)


def _macs_by_torch(model, x) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2     # torch counts a multiply-add as 2 FLOPs


def test_labels_are_the_config_labels(cifar):
    space = cifar[0]
    assert {k: tuple(m.values) for k, m in space.simplify().items()} == CIFAR.labels()
    assert set(CIFAR.labels()) == {f"s{i}_{kind}" for i in (1, 2, 3) for kind in ("width", "depth", "mixer")}
    assert CIFAR.labels()["s1_mixer"] == ("conv", "attention", "mlp")


@pytest.mark.parametrize("sample", CIFAR_SAMPLES, ids=_ids(CIFAR_SAMPLES))
def test_every_choice_builds_runs_and_matches_the_profilers(cifar, sample):
    from nni.nas.profiler.pytorch.flops import FlopsParamsProfiler
    space, counts, macs = cifar
    x = torch.zeros(1, 3, 32, 32)
    model = space.freeze(sample)
    y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    frozen = FlopsParamsProfiler(model, x)
    expected = counts.profile(sample)
    assert expected.params == sum(p.numel() for p in model.parameters())
    assert expected.params == frozen.flops_result.params
    assert expected.flops == frozen.flops_result.flops
    assert macs.profile(sample) == _macs_by_torch(model, x)


def test_mixers_are_what_they_claim(cifar):
    from search_spaces.spach import ConvMixer, SelfAttention, TokenMixingMLP
    space = cifar[0]
    first = {k: v[0] for k, v in CIFAR.labels().items()}
    for kind, cls in (("conv", ConvMixer), ("attention", SelfAttention), ("mlp", TokenMixingMLP)):
        model = space.freeze({**first, "s2_mixer": kind, "s2_depth": 2})
        blocks = model.stages[1].blocks          # a frozen Repeat is a Sequential of its blocks
        assert "mixer" in repr(model)
        assert len(blocks) == 2 and all(isinstance(b.mixer, cls) for b in blocks)
        if kind == "mlp":
            assert blocks[0].mixer.tokens == CIFAR.tokens(1) == 8 * 8
        if kind == "attention":
            assert blocks[0].mixer.heads == 64 // CIFAR.head_dim


def test_one_training_step(cifar):
    space = cifar[0]
    torch.manual_seed(0)
    sample = {**{k: v[-1] for k, v in CIFAR.labels().items()}, "s1_mixer": "conv", "s2_mixer": "mlp",
              "s3_mixer": "attention"}
    model = space.freeze(sample)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, target = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), target)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_spach_224_builds_runs_and_matches_the_profilers():
    from nni.nas.profiler.pytorch.flops import FlopsParamsProfiler
    cfg = SPACH_CONFIGS["spach-224"]
    space = spach_space("spach-224")
    assert {k: tuple(m.values) for k, m in space.simplify().items()} == cfg.labels()
    x = torch.zeros(1, 3, 224, 224)
    counts = FlopsParamsProfiler(space, x)
    first = {k: v[0] for k, v in cfg.labels().items()}
    for sample in ({**first, "s1_mixer": "attention", "s2_mixer": "mlp", "s4_mixer": "attention", "s3_depth": 3},
                   {**first, "s1_mixer": "mlp", "s3_mixer": "attention", "s4_width": 640}):
        model = space.freeze(sample)
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1000)
        expected, frozen = counts.profile(sample), FlopsParamsProfiler(model, x).flops_result
        assert expected.params == sum(p.numel() for p in model.parameters()) == frozen.params
        assert expected.flops == frozen.flops


def test_unknown_preset_names_the_argument():
    with pytest.raises(ValueError, match=r"name must be one of \['spach-224', 'spach-cifar'\], but got 'spach'"):
        spach_space("spach")


@pytest.mark.parametrize("mixers", [(), ("conv", "conv"), ("conv", "transformer"), "conv"])
def test_bad_mixers(mixers):
    with pytest.raises(ValueError, match="mixers must be a non-empty tuple of distinct names"):
        spach_space("spach-cifar", mixers=mixers)


@pytest.mark.parametrize("kwargs, message", [
    (dict(resolution=31), "resolution must be a multiple of patch"),
    (dict(stages=(SpachStage((24,)),)), r"widths must be multiples of head_dim=16, but got \(24,\)"),
    (dict(stages=(SpachStage((32,), (0,)),)), r"depths must be distinct positive integers, but got \(0,\)"),
    (dict(kernel=2), "kernel must be odd"),
])
def test_bad_config(kwargs, message):
    base = dict(name="x", resolution=32, num_classes=10, patch=2, stages=(SpachStage((32,)),), head_dim=16)
    with pytest.raises(ValueError, match=message):
        SpachConfig(**{**base, **kwargs})


def test_names_are_distinct_from_the_core_families():
    from deepmad_nni.core import FAMILIES, PRESETS
    from search_spaces import CONFIGS
    assert not set(SPACH_CONFIGS) & (set(FAMILIES) | set(PRESETS) | set(CONFIGS))


# -- DeepMAD on SPACH ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mixers, module", [(None, "mixer.attention"), (("attention",), "mixer"),
                                            (("mlp",), "mixer"), (("conv", "mlp"), "mixer.mlp")])
def test_reader_refuses_attention_and_token_mlp(mixers, module):
    from deepmad_nni.nas.reader import UnsupportedModuleError, read_space
    with pytest.raises(UnsupportedModuleError, match=rf"does not support matmul \(in module "
                                                     rf"'stages\.0\.blocks\.blocks\.0\.{module}'.*convolutional "
                                                     "networks only"):
        read_space(spach_space("spach-cifar", mixers=mixers))


def test_deepmad_strategy_refuses_the_full_space():
    from deepmad_nni import DeepMAD
    from deepmad_nni.nas.reader import UnsupportedModuleError
    with pytest.raises(UnsupportedModuleError, match="matmul"):
        DeepMAD(flops=10e6).solve(spach_space("spach-cifar"))


def test_conv_only_subspace_is_read_and_solved():
    """The reader reads ("conv",): its FLOPs (MACs) and params equal NNI's on frozen samples; DeepMAD solves it."""
    from nni.nas.profiler.pytorch.flops import FlopsProfiler

    from deepmad_nni import DeepMAD
    from deepmad_nni.nas.reader import read_space
    space = spach_space("spach-cifar", mixers=("conv",))
    labels = {k: tuple(m.values) for k, m in space.simplify().items()}
    assert not any(k.endswith("_mixer") for k in labels)
    desc = read_space(space)
    assert desc.num_stages == 3
    x = torch.zeros(1, 3, 32, 32)
    for sample in _samples(labels, n_random=0)[:3] + [{k: v[-1] for k, v in labels.items()}]:
        model = space.freeze(sample)
        s = desc.evaluate(sample)
        assert s.params == sum(p.numel() for p in model.parameters())
        assert s.flops == FlopsProfiler(model, x, **MACS).expression
    budget = desc.evaluate({k: v[-1] for k, v in labels.items()}).flops * 0.6
    designs = DeepMAD(flops=budget).solve(space)
    assert designs and all(d.flops <= budget for d in designs)
