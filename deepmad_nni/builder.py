"""Torch builder: an :class:`~deepmad_nni.core.Architecture` -> ``torch.nn.Module``.

The module has exactly the layers :mod:`deepmad_nni.core.arch` documents, so that
``sum(p.numel() for p in model.parameters()) == score(arch).params`` and NNI's ``FlopsProfiler``
(``count_normalization=False, count_activation=False, count_bias=False``) gives ``score(arch).flops``:

* every conv: ``Conv2d(bias=False, padding=k // 2)`` + ``BatchNorm2d``, then the activation (none after
  the last 1x1 of a residual block, of an inverted residual, and of a ``skip`` projection);
* ``basic`` / ``bottleneck``: the activation after the residual sum; 1x1 projection shortcut (conv + BN,
  stride) when the stride or the width changes, identity otherwise;
* ``mbconv`` / ``mbconv_se``: identity shortcut only when stride 1 and ``c_in == c_out``; SE on the
  depthwise output: mean over space -> 1x1 conv (bias) -> activation -> 1x1 conv (bias) -> sigmoid gate;
* classifier: global average pool written as ``x.mean((2, 3))`` (NNI's shape inference has no formula for
  ``adaptive_avg_pool2d`` + ``flatten``) and ``Linear(c_last, num_classes)`` with bias.

The blocks are those of :mod:`deepmad_nni.blocks` (shared with the NNI spaces of ``search_spaces``).
Activation: ReLU everywhere by default (the official TinyNAS structures use ReLU);
``activation="silu"`` (or any ``nn.Module`` class) swaps it in every block, SE included.  The SE gate and
SiLU carry a shape formula (``_shape_forward``) for NNI's shape inference; a custom activation class needs
one too (or an NNI-registered aten op) for NNI's profilers, not for training.
Any input resolution and channel count work: the padding keeps ``r_out = ceil(r_in / stride)``.
"""
from __future__ import annotations

from torch import nn

from .blocks import Basic, Bottleneck, ConvBN, InvertedResidual, SiLU, shortcut
from .core.arch import Architecture, Stage

ACTIVATIONS = {"relu": nn.ReLU, "silu": SiLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish}


def _activation_class(activation):
    if activation is None:
        return nn.ReLU
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or an nn.Module class, but got {activation!r}.")


def build_block(stage: Stage, c_in: int, stride: int, act) -> nn.Module:
    """One block of ``stage`` taking ``c_in`` channels with ``stride`` (the stage's first block or a repeat)."""
    k, c_out, mid = stage.kernel, stage.c_out, stage.mid
    if stage.block == "conv":
        return ConvBN(c_in, c_out, k, stride, act=act)
    if stage.block == "skip":
        return shortcut(c_in, c_out, stride)
    if stage.block == "basic":
        return Basic(c_in, c_out, k, stride, act=act)
    if stage.block == "bottleneck":
        return Bottleneck(c_in, c_out, k, stride, mid=mid, act=act)
    return InvertedResidual(c_in, c_out, k, stride, mid=mid, se=stage.block == "mbconv_se", act=act)


class DeepMADNet(nn.Module):
    """The built network: ``features`` (one ``nn.Sequential`` per stage entry) and ``classifier``."""

    def __init__(self, arch: Architecture, *, activation=None):
        super().__init__()
        act = _activation_class(activation)
        stages = []
        for st in arch.stages:
            blocks = [build_block(st, st.c_in if i == 0 else st.c_out, st.stride if i == 0 else 1, act)
                      for i in range(st.depth)]
            stages.append(nn.Sequential(*blocks))
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Linear(arch.width, arch.num_classes)
        self.resolution, self.in_channels = arch.resolution, arch.in_channels

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.mean((2, 3)))


def build_model(arch: Architecture, *, activation=None) -> nn.Module:
    """The ``nn.Module`` of ``arch`` (layout in the module docstring); ``activation``: None (ReLU), a name
    in ``ACTIVATIONS`` or an ``nn.Module`` class."""
    if not isinstance(arch, Architecture):
        raise ValueError(f"arch must be a deepmad_nni.core.Architecture, but got {type(arch).__name__}.")
    return DeepMADNet(arch, activation=activation)
