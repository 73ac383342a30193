"""The NAS-Bench-Macro space (CIFAR-10) as an NNI 3.0 ModelSpace, and its samples <-> the benchmark's keys.

Eight searchable layers ``layer0`` .. ``layer7`` in stages of 2, 3, 3 layers; each is a LayerChoice over
``[identity, inverted residual k3 e3, inverted residual k5 e6]``, so a sample's value at ``layer{i}`` is the
``i``-th character of the benchmark key ('0', '1', '2').  The first layer of a stage has stride 2 and doubles
the width (32 -> 64 -> 128 -> 256); its identity is a 1x1 stride-2 conv + BN.  Stem 3x3 conv 3->32 + BN +
ReLU; head 1x1 conv 256->1280 + BN + ReLU, global average pool, Linear(1280, 10).  Convs have no bias; the
blocks are :mod:`deepmad_nni.blocks`'s (inverted residuals expand the input width: ``mid = e * c_in``).

With ``FlopsProfiler(space, x, count_normalization=False, count_activation=False, count_bias=False)`` and
``NumParamsProfiler(space, x)`` (x of shape (1, 3, 32, 32)) the space's counts equal the benchmark's.
"""
from __future__ import annotations

import torch
from torch import nn

from nni.nas.nn.pytorch import LayerChoice, ModelSpace

from deepmad_nni.blocks import ConvBN, InvertedResidual, shortcut

NUM_LAYERS = 8
STAGE_DEPTHS = (2, 3, 3)
STEM_WIDTH = 32
HEAD_WIDTH = 1280
OPS = ("identity", "ir_k3_e3", "ir_k5_e6")


def label_of_layer(i: int) -> str:
    return f"layer{i}"


LABELS = tuple(label_of_layer(i) for i in range(NUM_LAYERS))


def layer_shapes() -> list[tuple[int, int, int]]:
    """(c_in, c_out, stride) of the eight searchable layers."""
    shapes, c = [], STEM_WIDTH
    for depth in STAGE_DEPTHS:
        for j in range(depth):
            c_out = 2 * c if j == 0 else c
            shapes.append((c, c_out, 2 if j == 0 else 1))
            c = c_out
    return shapes


class NasBenchMacroSpace(ModelSpace):
    """NNI model space of NAS-Bench-Macro; ``num_classes`` defaults to CIFAR-10's 10 classes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = ConvBN(in_channels, STEM_WIDTH, 3, act=nn.ReLU)
        layers = []
        for i, (c_in, c_out, stride) in enumerate(layer_shapes()):
            layers.append(LayerChoice([
                shortcut(c_in, c_out, stride),
                InvertedResidual(c_in, c_out, 3, stride, mid=3 * c_in),
                InvertedResidual(c_in, c_out, 5, stride, mid=6 * c_in),
            ], label=label_of_layer(i)))
        self.layers = nn.Sequential(*layers)
        self.head = ConvBN(layer_shapes()[-1][1], HEAD_WIDTH, 1, act=nn.ReLU)
        self.classifier = nn.Linear(HEAD_WIDTH, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.layers(self.stem(x)))
        return self.classifier(x.mean((2, 3)))


def key_of_sample(sample: dict) -> str:
    """The benchmark key ('0'/'1'/'2' per layer) of an NNI sample of :class:`NasBenchMacroSpace`."""
    try:
        values = [sample[label] for label in LABELS]
    except (KeyError, TypeError):
        raise ValueError(f"sample must map each of {list(LABELS)} to 0, 1 or 2, but got {sample!r}.") from None
    if any(v not in (0, 1, 2) or isinstance(v, bool) for v in values):
        raise ValueError(f"sample must map each of {list(LABELS)} to 0, 1 or 2, but got {sample!r}.")
    return "".join(str(int(v)) for v in values)


def sample_of_key(key: str) -> dict:
    """The NNI sample of a benchmark key such as ``'01201122'``."""
    if not isinstance(key, str) or len(key) != NUM_LAYERS or set(key) - set("012"):
        raise ValueError(f"key must be {NUM_LAYERS} characters of 0/1/2, but got {key!r}.")
    return {label: int(c) for label, c in zip(LABELS, key)}
