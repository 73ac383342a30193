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

Activation: ReLU everywhere by default (the official TinyNAS structures use ReLU);
``activation="silu"`` (or any ``nn.Module`` class) swaps it in every block, SE included.  The SE gate and
SiLU carry a shape formula (``_shape_forward``) for NNI's shape inference; a custom activation class needs
one too (or an NNI-registered aten op) for NNI's profilers, not for training.
Any input resolution and channel count work: the padding keeps ``r_out = ceil(r_in / stride)``.
"""
from __future__ import annotations

from torch import nn

from .core.arch import Architecture, Stage, se_width



class _KeepsShape:
    """Shape formula for NNI's shape inference (it has none for sigmoid / SiLU): output shape = input shape."""

    def _shape_forward(self, x):
        return x.real_shape


class SiLU(_KeepsShape, nn.SiLU):
    pass


class Sigmoid(_KeepsShape, nn.Sigmoid):
    pass


ACTIVATIONS = {"relu": nn.ReLU, "silu": SiLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish}


def _activation_class(activation):
    if activation is None:
        return nn.ReLU
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or an nn.Module class, "
                             f"but got {activation!r}.")
        return ACTIVATIONS[activation]
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or an nn.Module class, but got {activation!r}.")


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act=None) -> nn.Sequential:
    """Conv (no bias, 'same' padding) + BatchNorm, then ``act()`` when given."""
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 and c_in == c_out else conv_bn(c_in, c_out, 1, stride)


class Residual(nn.Module):
    """ResNet basic or bottleneck block: ``act(body(x) + shortcut(x))``."""

    def __init__(self, body: nn.Module, shortcut: nn.Module, act):
        super().__init__()
        self.body, self.shortcut, self.act = body, shortcut, act()

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(fc2(act(fc1(mean(x)))))`` with 1x1 convs with bias."""

    def __init__(self, channels: int, hidden: int, act):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = act()
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=True)
        self.gate = Sigmoid()

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class InvertedResidual(nn.Module):
    """MobileNet-V2 block: 1x1 expand -> depthwise k x k (stride) [-> SE] -> 1x1 project (no activation)."""

    def __init__(self, c_in: int, c_out: int, mid: int, kernel: int, stride: int, se: bool, act):
        super().__init__()
        layers = [conv_bn(c_in, mid, 1, act=act), conv_bn(mid, mid, kernel, stride, groups=mid, act=act)]
        if se:
            layers.append(SqueezeExcite(mid, se_width(mid), act))
        layers.append(conv_bn(mid, c_out, 1))
        self.body = nn.Sequential(*layers)
        self.use_identity = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_identity else y


def build_block(stage: Stage, c_in: int, stride: int, act) -> nn.Module:
    """One block of ``stage`` taking ``c_in`` channels with ``stride`` (the stage's first block or a repeat)."""
    k, c_out, mid = stage.kernel, stage.c_out, stage.mid
    if stage.block == "conv":
        return conv_bn(c_in, c_out, k, stride, act=act)
    if stage.block == "skip":
        return _shortcut(c_in, c_out, stride)
    if stage.block == "basic":
        body = nn.Sequential(conv_bn(c_in, c_out, k, stride, act=act), conv_bn(c_out, c_out, k))
        return Residual(body, _shortcut(c_in, c_out, stride), act)
    if stage.block == "bottleneck":
        body = nn.Sequential(conv_bn(c_in, mid, 1, act=act), conv_bn(mid, mid, k, stride, act=act),
                             conv_bn(mid, c_out, 1))
        return Residual(body, _shortcut(c_in, c_out, stride), act)
    return InvertedResidual(c_in, c_out, mid, k, stride, stage.block == "mbconv_se", act)


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
