"""The torch blocks of every network the package builds: ``deepmad_nni.builder`` and the ``search_spaces``.

Layout exactly as :mod:`deepmad_nni.core.arch` counts it: every conv has no bias, 'same' padding ``k // 2`` and a
BatchNorm; SE convs have a bias and no BatchNorm; no activation after the last conv of a residual body, of an
inverted residual or of a projection shortcut.

Sizes (widths, kernels, bottleneck widths) are ints or NNI mutables (``nni.choice`` and expressions of them).  A
layer whose sizes are all plain numbers is the torch layer (``nn.Conv2d``, ``nn.BatchNorm2d``), otherwise NNI's
``MutableConv2d`` / ``MutableBatchNorm2d``; nni is imported only then, so plain networks need torch alone.
``act`` is an ``nn.Module`` class (ReLU by default).
"""
from __future__ import annotations

import sys

from torch import nn

from .core import arch


def is_mutable(value) -> bool:
    """Whether ``value`` is an NNI mutable (checked without importing nni: no mutable exists before it is)."""
    mutable = sys.modules.get("nni.mutable")
    return mutable is not None and isinstance(value, mutable.Mutable)


def same_width(a, b) -> bool:
    """The shortcut rule's ``c_in == c_out``: equal numbers, or the very same NNI mutable.  Two different
    mutables count as different widths: the spaces keep consecutive width lists disjoint."""
    return a is b if is_mutable(a) or is_mutable(b) else a == b


def keeps_shape(c_in, c_out, stride) -> bool:
    """Identity shortcut (no projection): stride 1 and the same width."""
    return stride == 1 and same_width(c_in, c_out)


def se_width(mid):
    """:func:`deepmad_nni.core.arch.se_width` of an int or an NNI expression."""
    if not is_mutable(mid):
        return arch.se_width(mid)
    from nni.mutable import MutableExpression
    return arch.se_width(mid, maximum=MutableExpression.max)


def _layer(torch_cls, *args, **kwargs) -> nn.Module:
    """``torch_cls(*args, **kwargs)``, or its NNI ``Mutable*`` counterpart when an argument is an NNI mutable."""
    if any(is_mutable(a) for a in (*args, *kwargs.values())):
        from nni.nas.nn import pytorch as nni_nn
        torch_cls = getattr(nni_nn, "Mutable" + torch_cls.__name__)
    return torch_cls(*args, **kwargs)


class _KeepsShape:
    """Shape formula for NNI's shape inference (it has none for sigmoid / SiLU): output shape = input shape."""

    def _shape_forward(self, x):
        return x.real_shape


class SiLU(_KeepsShape, nn.SiLU):
    pass


class Sigmoid(_KeepsShape, nn.Sigmoid):
    pass


class ConvBN(nn.Module):
    """k x k conv (no bias, padding ``k // 2``, ``groups``) + BatchNorm, then ``act()`` when ``act`` is given."""

    def __init__(self, c_in, c_out, kernel, stride: int = 1, *, groups=1, act=None):
        super().__init__()
        self.conv = _layer(nn.Conv2d, c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = _layer(nn.BatchNorm2d, c_out)
        self.act = act() if act is not None else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x

    def _shape_forward(self, x):
        """NNI shape formula: ceil(r / stride) whatever the (odd) kernel, so shapes carry no kernel label."""
        from nni.nas.profiler.pytorch.utils import MutableShape
        from nni.nas.profiler.pytorch.utils._attrs import _getattr
        n, _, h, w = x.real_shape
        s = self.conv.stride[0]
        return MutableShape(n, _getattr(self.conv, "out_channels"), (h + s - 1) // s, (w + s - 1) // s)


def shortcut(c_in, c_out, stride: int = 1) -> nn.Module:
    """Identity when the shape is kept, else the projection: 1x1 conv (stride) + BN, no activation."""
    return nn.Identity() if keeps_shape(c_in, c_out, stride) else ConvBN(c_in, c_out, 1, stride)


class Residual(nn.Module):
    """``act(body(x) + shortcut(x))``, the shortcut of :func:`shortcut`."""

    def __init__(self, body: nn.Module, c_in, c_out, stride: int, act):
        super().__init__()
        self.body, self.shortcut, self.act = body, shortcut(c_in, c_out, stride), act()

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


class Basic(Residual):
    """ResNet basic block: k x k (stride) -> k x k."""

    def __init__(self, c_in, c_out, kernel, stride: int = 1, *, act=nn.ReLU):
        body = nn.Sequential(ConvBN(c_in, c_out, kernel, stride, act=act), ConvBN(c_out, c_out, kernel))
        super().__init__(body, c_in, c_out, stride, act)


class Bottleneck(Residual):
    """ResNet bottleneck: 1x1 to ``mid`` -> k x k (stride) -> 1x1 to ``c_out``."""

    def __init__(self, c_in, c_out, kernel, stride: int = 1, *, mid, act=nn.ReLU):
        body = nn.Sequential(ConvBN(c_in, mid, 1, act=act), ConvBN(mid, mid, kernel, stride, act=act),
                             ConvBN(mid, c_out, 1))
        super().__init__(body, c_in, c_out, stride, act)


class SqueezeExcite(nn.Module):
    """``x * sigmoid(fc2(act(fc1(mean(x)))))``: 1x1 convs with bias, ``channels -> se_width(channels) -> channels``."""

    def __init__(self, channels, *, act=nn.ReLU):
        super().__init__()
        hidden = se_width(channels)
        self.fc1 = _layer(nn.Conv2d, channels, hidden, 1, bias=True)
        self.act = act()
        self.fc2 = _layer(nn.Conv2d, hidden, channels, 1, bias=True)
        self.gate = Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))


class InvertedResidual(nn.Module):
    """MobileNet-V2 block: 1x1 to ``mid`` -> depthwise k x k (stride) [-> SE] -> 1x1 to ``c_out``; adds the input
    only when the shape is kept (no projection)."""

    def __init__(self, c_in, c_out, kernel, stride: int = 1, *, mid, se: bool = False, act=nn.ReLU):
        super().__init__()
        layers = [ConvBN(c_in, mid, 1, act=act), ConvBN(mid, mid, kernel, stride, groups=mid, act=act)]
        if se:
            layers.append(SqueezeExcite(mid, act=act))
        layers.append(ConvBN(mid, c_out, 1))
        self.body = nn.Sequential(*layers)
        self.use_identity = keeps_shape(c_in, c_out, stride)

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_identity else y
