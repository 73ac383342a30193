"""deepmad_nni.blocks: the shortcut rule for ints and NNI mutables, one se_width rule, torch-only plain networks."""
import random
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nni = pytest.importorskip("nni")

from torch import nn  # noqa: E402

from deepmad_nni import blocks  # noqa: E402
from deepmad_nni.builder import build_model  # noqa: E402
from deepmad_nni.core import Architecture, Stage, score  # noqa: E402
from deepmad_nni.core import arch as core_arch  # noqa: E402
from deepmad_nni.core import terms  # noqa: E402


def _big(n: int) -> int:
    return int(str(n))  # a fresh int object: ints above 256 are not cached, so `is` would say "different"


@pytest.mark.parametrize("width", [320, 1000, 2048])
def test_equal_large_int_widths_get_the_identity_shortcut(width):
    a, b = _big(width), _big(width)
    assert a is not b and blocks.keeps_shape(a, b, 1) and not blocks.keeps_shape(a, b, 2)
    assert isinstance(blocks.shortcut(a, b, 1), nn.Identity)
    assert isinstance(blocks.Basic(a, b, 3).shortcut, nn.Identity)
    assert isinstance(blocks.Bottleneck(a, b, 3, mid=64).shortcut, nn.Identity)
    assert blocks.InvertedResidual(a, b, 3, mid=_big(2 * width)).use_identity
    assert isinstance(blocks.Basic(a, _big(width + 8), 3).shortcut, blocks.ConvBN)


def test_large_equal_widths_build_with_core_counts():
    c = _big(320)
    stages = (Stage("conv", 3, c, 2, 3), Stage("basic", _big(320), c, 1, 3, 2),
              Stage("mbconv_se", c, _big(320), 1, 3, 2, _big(640)), Stage("skip", _big(320), c, 1, 1))
    arch = Architecture(stages, 16, 3, 10)
    model = build_model(arch)
    assert isinstance(model.features[1][0].shortcut, nn.Identity) and model.features[2][0].use_identity
    assert isinstance(model.features[3][0], nn.Identity)
    assert sum(p.numel() for p in model.parameters()) == score(arch).params


def _in_space(build):
    """``build()`` inside a ModelSpace's ``__init__`` (where NNI lets mutable layers be made)."""
    from nni.nas.nn.pytorch import ModelSpace

    class Space(ModelSpace):
        def __init__(self):
            super().__init__()
            self.module = build()

        def forward(self, x):
            return self.module(x)

    return Space()


def test_mutable_widths_share_a_shortcut_only_when_they_are_the_same_choice():
    w, v = nni.choice("w", [32, 48]), nni.choice("v", [32, 48])
    assert blocks.keeps_shape(w, w, 1) and not blocks.keeps_shape(w, v, 1) and not blocks.keeps_shape(w, 32, 1)
    assert isinstance(_in_space(lambda: blocks.Basic(w, w, 3)).module.shortcut, nn.Identity)
    assert isinstance(_in_space(lambda: blocks.Basic(32, w, 3)).module.shortcut, blocks.ConvBN)


def test_one_se_width_rule_over_ints_arrays_and_nni_expressions():
    mids = sorted(set(range(1, 1200, 7)) | {8, 31, 32, 33, 63, 64, 65, 127, 128, 129})
    expected = [core_arch.se_width(m) for m in mids]
    assert expected[:3] == [8, 8, 8] and core_arch.se_width(128) == 32 and core_arch.se_width(159) == 32
    assert terms.se_width(np.array(mids)).tolist() == expected
    assert terms.se_width(np.array(mids, dtype=float)).tolist() == expected  # the solver's float arrays
    assert [blocks.se_width(m) for m in mids] == expected
    choice = nni.choice("mid", mids)
    expr = blocks.se_width(choice * 1)  # an expression, as in InvertedResidual's mid = width * expansion
    assert isinstance(expr, nni.mutable.MutableExpression)
    assert [expr.freeze({"mid": m}) for m in mids] == expected


def test_layers_are_torch_layers_for_ints_and_nni_layers_for_mutables():
    from nni.nas.nn.pytorch import MutableBatchNorm2d, MutableConv2d
    plain = blocks.InvertedResidual(16, 24, 3, 2, mid=48, se=True)
    assert {type(m) for m in plain.modules()} & {MutableConv2d, MutableBatchNorm2d} == set()
    mutable = _in_space(lambda: blocks.ConvBN(16, nni.choice("c", [24, 32]), 3)).module
    assert type(mutable.conv) is MutableConv2d and type(mutable.bn) is MutableBatchNorm2d


def test_frozen_nni_blocks_equal_the_torch_blocks():
    def build():
        w = nni.choice("w", [24, 32])
        return blocks.InvertedResidual(w, w, nni.choice("k", [3, 5]), mid=w * nni.choice("e", [3, 6]), se=True)

    space, rng = _in_space(build), random.Random(0)
    for _ in range(3):
        s = {"w": rng.choice([24, 32]), "k": rng.choice([3, 5]), "e": rng.choice([3, 6])}
        frozen = space.freeze(s).module
        plain = blocks.InvertedResidual(s["w"], s["w"], s["k"], mid=s["w"] * s["e"], se=True)
        assert [(k, v.shape) for k, v in frozen.state_dict().items()] == \
               [(k, v.shape) for k, v in plain.state_dict().items()]
        assert frozen.use_identity and {type(m) for m in frozen.modules()} == {type(m) for m in plain.modules()}


def test_plain_networks_need_torch_alone():
    code = ("import sys; from deepmad_nni.builder import build_model; from deepmad_nni.core import from_structure;"
            "build_model(from_structure([{'class': 'ConvKXBNRELU', 'in': 3, 'out': 16, 's': 2, 'k': 3},"
            "{'class': 'SuperResK1DWSEK1', 'in': 16, 'out': 24, 's': 2, 'k': 3, 'L': 2, 'btn': 48}]));"
            "assert not any(m == 'nni' or m.startswith('nni.') for m in sys.modules), 'nni imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
