"""analyze(): DeepMAD's figures of torch CNNs from their dataflow, against the core's score() as oracle."""
import random
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nni")

from torch import nn  # noqa: E402

from deepmad_nni.core import Architecture, Stage, get_family, score  # noqa: E402
from deepmad_nni.nas.analyze import analyze  # noqa: E402
from deepmad_nni.nas.trace import UnsupportedModuleError  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")


def _archs():
    rng = random.Random(0)
    macro = list(get_family("nas-bench-macro").enumerate())
    resnet = Architecture((Stage("conv", 3, 16, 1, 3), Stage("bottleneck", 16, 32, 1, 3, 2, 8),
                           Stage("bottleneck", 32, 64, 2, 5, 1, 16), Stage("basic", 64, 96, 2, 3, 2)), 32, 3, 10)
    mb = Architecture((Stage("conv", 3, 16, 2, 3), Stage("mbconv_se", 16, 24, 1, 3, 2, 48),
                       Stage("mbconv", 24, 40, 2, 5, 3, 120), Stage("conv", 40, 256, 1, 1)), 64, 3, 100)
    return rng.sample(macro, 2) + [resnet, mb]


@pytest.mark.parametrize("arch", _archs())
def test_analyze_equals_core_score(arch):
    build_model = pytest.importorskip("deepmad_nni.builder").build_model
    model = build_model(arch)
    for convention in ("official", "paper"):
        a = analyze(model, (1, 3, arch.resolution, arch.resolution), convention=convention)
        s = score(arch, convention=convention)
        assert a.entropy == pytest.approx(s.entropy, rel=1e-9)
        assert a.effectiveness == pytest.approx(s.effectiveness, rel=1e-9)
        assert (a.flops, a.params, a.num_layers) == (s.flops, s.params, s.num_layers)
        if convention == "paper":
            assert a.q == pytest.approx(s.q)
    assert len(a.main_layers()) == s.num_layers


class Misnamed(nn.Module):
    """Names lie: 'main' is the projection shortcut, 'shortcut' the main path, 'se' a plain conv."""

    def __init__(self):
        super().__init__()
        self.se = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.shortcut = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.ReLU(),
                                      nn.Conv2d(16, 16, 3, 1, 1, bias=False))
        self.main = nn.Conv2d(8, 16, 1, 2, bias=False)
        self.classifier_conv = nn.Conv2d(16, 4, 1)
        self.gate_a, self.gate_b = nn.Conv2d(16, 4, 1), nn.Conv2d(4, 16, 1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.se(x)
        x = self.shortcut(x) + self.main(x)
        x = x * self.gate_b(self.classifier_conv(x.mean((2, 3), keepdim=True)).relu()).sigmoid()
        return self.fc(x.mean((2, 3)))


def test_roles_come_from_dataflow_not_names():
    a = analyze(Misnamed(), (1, 3, 16, 16))
    roles = {row["name"]: row["role"] for row in a.layers}
    assert roles == {"se": "main", "shortcut.0": "main", "shortcut.2": "main", "main": "projection",
                     "classifier_conv": "gate", "gate_b": "gate"}   # gate_a never runs
    assert a.num_layers == 3 and a.num_stages == 2


def test_unsupported_and_bad_input():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 1)

        def forward(self, x):
            t = self.conv(x).flatten(2)
            return torch.bmm(t.transpose(1, 2), t).mean()

    with pytest.raises(UnsupportedModuleError, match="bmm"):
        analyze(Attn(), (1, 3, 8, 8))
    with pytest.raises(ValueError, match="module"):
        analyze("resnet50", (1, 3, 8, 8))
