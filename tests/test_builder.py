"""The torch builder against the core's analytic counts: sum(p.numel()) == params, NNI's FlopsProfiler == FLOPs."""
import dataclasses
import random
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nni")

from deepmad_nni.builder import build_model  # noqa: E402
from deepmad_nni.core import FAMILIES, from_structure, score  # noqa: E402
from deepmad_nni.benchmarks import nas_bench_macro as nbm  # noqa: E402

# Small designs in the official structure format (R-style, MB-style, basic blocks).
R_STYLE = [
    {"class": "ConvKXBNRELU", "in": 3, "out": 32, "s": 2, "k": 3},
    {"class": "SuperResK1KXK1", "in": 32, "out": 64, "s": 2, "k": 3, "L": 1, "btn": 16},
    {"class": "SuperResK1KXK1", "in": 64, "out": 128, "s": 2, "k": 5, "L": 2, "btn": 32},
    {"class": "SuperResK1KXK1", "in": 128, "out": 128, "s": 1, "k": 3, "L": 1, "btn": 24},
]
MB_STYLE = [
    {"class": "ConvKXBNRELU", "in": 3, "out": 16, "s": 2, "k": 3},
    {"class": "SuperResK1DWSEK1", "in": 16, "out": 24, "s": 2, "k": 3, "L": 2, "btn": 48},
    {"class": "SuperResK1DWK1", "in": 24, "out": 40, "s": 2, "k": 5, "L": 1, "btn": 96},
    {"class": "SuperResK1DWSEK1", "in": 40, "out": 40, "s": 1, "k": 7, "L": 2, "btn": 160},
    {"class": "ConvKXBNRELU", "in": 40, "out": 128, "s": 1, "k": 1},
]
BASIC_STYLE = [
    {"class": "ConvKXBNRELU", "in": 3, "out": 16, "s": 1, "k": 3},
    {"class": "SuperResKXKX", "in": 16, "out": 16, "s": 1, "k": 3, "L": 2},
    {"class": "SuperResKXKX", "in": 16, "out": 32, "s": 2, "k": 5, "L": 1},
]


@pytest.fixture(autouse=True)
def _quiet_nni():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
        yield


def profiled_flops(model, arch) -> float:
    from nni.nas.profiler.pytorch.flops import FlopsProfiler
    x = torch.zeros(1, arch.in_channels, arch.resolution, arch.resolution)
    return FlopsProfiler(model, x, count_normalization=False, count_activation=False, count_bias=False).expression


def check_counts(arch, **build_kwargs):
    model = build_model(arch, **build_kwargs).eval()
    s = score(arch)
    assert sum(p.numel() for p in model.parameters()) == s.params
    assert profiled_flops(model, arch) == s.flops
    x = torch.randn(2, arch.in_channels, arch.resolution, arch.resolution)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, arch.num_classes)
    assert torch.isfinite(y).all()


def small_random_architecture(family, rng):
    """A random member of ``family`` among its narrower, shallower options (keeps the test fast)."""
    choices, c_in = [], family.in_channels
    for j in range(len(family.slots)):
        options = family.slot_options(j, c_in)
        widths = sorted({o[0] for o in options})[:3]
        small = [o for o in options if o[0] in widths and o[2] <= 2] or options
        choices.append(rng.choice(small))
        c_in = choices[-1][0]
    return family.architecture(choices)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_random_family_members_match_core_counts(name):
    family = FAMILIES[name]
    rng = random.Random(name)
    for i in range(3):
        arch = small_random_architecture(family, rng)
        if family.resolution > 64 and i > 0:
            arch = arch.replace(resolution=48)  # one arch at 224; the rest small for speed
        check_counts(arch)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_one_input_channel_and_odd_resolution(name):
    family = dataclasses.replace(FAMILIES[name], in_channels=1, resolution=14, num_classes=7)
    check_counts(small_random_architecture(family, random.Random(1)), activation="silu")


@pytest.mark.parametrize("structure", [R_STYLE, MB_STYLE, BASIC_STYLE], ids=["resnet", "mbv2", "basic"])
@pytest.mark.parametrize("resolution, num_classes", [(224, 1000), (32, 10)])
def test_published_style_structures(structure, resolution, num_classes):
    check_counts(from_structure(structure, resolution=resolution, num_classes=num_classes))


NBM_KEYS = ["00000000", "11111111", "22222222", "12012012", "20202020", "01210221"]


@pytest.mark.parametrize("key", NBM_KEYS)
def test_nas_bench_macro_keys(key):
    arch = nbm.architecture_of_key(key)
    check_counts(arch)
    path = nbm.default_path()
    if path is not None:  # the benchmark's own counts are a second oracle where the file is present
        entry = nbm.NasBenchMacro(path)[key]
        model = build_model(arch)
        assert sum(p.numel() for p in model.parameters()) == entry.params
        assert profiled_flops(model, arch) == entry.flops


def test_block_layout():
    arch = from_structure(MB_STYLE, resolution=32, num_classes=10)
    model = build_model(arch)
    se = model.features[1][0].body[2]
    assert se.fc1.bias is not None and se.fc1.out_channels == 8  # se_width(48) = max(8, 12 // 8 * 8)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(1 for c in convs if c.bias is None) == sum(1 for m in model.modules()
                                                           if isinstance(m, torch.nn.BatchNorm2d))
    assert model.features[3][1].use_identity and not model.features[2][0].use_identity


def test_bad_input():
    with pytest.raises(ValueError, match="arch"):
        build_model([{"class": "ConvKXBNRELU"}])
    with pytest.raises(ValueError, match="activation"):
        build_model(from_structure(MB_STYLE), activation="tanh-ish")
