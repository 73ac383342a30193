"""Building blocks of the package's NNI model spaces, laid out exactly as ``deepmad_nni.core.arch`` describes.

Every conv has no bias and is followed by BatchNorm; SE convs have a bias and no BatchNorm.  Widths, kernels,
bottleneck widths and expansions may be ``nni.choice`` values (or expressions of them).  Shortcuts are
decided structurally: a projection when the stride is not 1 or the input and output widths are different
objects (the spaces keep consecutive stages' width lists disjoint, so that "different object" means
"different width" for every sample).
"""
from __future__ import annotations

from nni.mutable import MutableExpression
from nni.nas.nn.pytorch import MutableBatchNorm2d, MutableConv2d
from nni.nas.profiler.pytorch.utils.shape_formula import find_shape_inference_formula, register_shape_inference_formula
from torch import nn


def _keep_shape(module, input):
    return input.real_shape


if find_shape_inference_formula(nn.Sigmoid) is None:  # NNI 3.0 has none; SE gates need it for shape inference
    register_shape_inference_formula(nn.Sigmoid, _keep_shape)


def se_width(mid):
    """SE hidden width of ``deepmad_nni.core.arch.se_width``: max(8, (mid // 4) // 8 * 8), for ints or expressions."""
    if isinstance(mid, int):
        return max(8, (mid // 4) // 8 * 8)
    return MutableExpression.max(8, mid // 4 // 8 * 8)


class ConvBN(nn.Module):
    """k x k conv (no bias) + BatchNorm, optionally followed by ReLU."""

    def __init__(self, c_in, c_out, kernel, stride: int = 1, groups=1, relu: bool = True):
        super().__init__()
        self.conv = MutableConv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = MutableBatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=True) if relu else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x

    def _shape_forward(self, input):
        """NNI shape formula: ceil(H / stride) for every (odd) kernel, so shapes do not grow with kernel labels."""
        from nni.nas.profiler.pytorch.utils import MutableShape
        from nni.nas.profiler.pytorch.utils._attrs import _getattr
        n, _, h, w = input.real_shape
        s = self.conv.stride[0]
        return MutableShape(n, _getattr(self.conv, "out_channels"), (h + s - 1) // s, (w + s - 1) // s)


class Basic(nn.Module):
    """ResNet basic block: k x k (stride) -> k x k, projection shortcut when the shape changes."""

    def __init__(self, c_in, c_out, kernel, stride: int):
        super().__init__()
        self.conv1 = ConvBN(c_in, c_out, kernel, stride)
        self.conv2 = ConvBN(c_out, c_out, kernel, 1, relu=False)
        self.shortcut = ConvBN(c_in, c_out, 1, stride, relu=False) if stride != 1 or c_in is not c_out else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv2(self.conv1(x)) + skip)


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 to ``mid`` -> k x k (stride) -> 1x1 to ``c_out``; projection when the shape changes."""

    def __init__(self, c_in, c_out, kernel, stride: int, mid):
        super().__init__()
        self.conv1 = ConvBN(c_in, mid, 1)
        self.conv2 = ConvBN(mid, mid, kernel, stride)
        self.conv3 = ConvBN(mid, c_out, 1, relu=False)
        self.shortcut = ConvBN(c_in, c_out, 1, stride, relu=False) if stride != 1 or c_in is not c_out else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.conv3(self.conv2(self.conv1(x))) + skip)


class SqueezeExcite(nn.Module):
    """x * sigmoid(conv(relu(conv(mean(x))))) with 1x1 convs mid -> se_width(mid) -> mid (bias, no BN)."""

    def __init__(self, channels):
        super().__init__()
        hidden = se_width(channels)
        self.reduce = MutableConv2d(channels, hidden, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = MutableConv2d(hidden, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))))


class MBConv(nn.Module):
    """MobileNet-V2 inverted residual (+ optional SE): 1x1 to ``mid`` -> depthwise k x k (stride) [-> SE] -> 1x1.

    Identity shortcut only when the stride is 1 and input and output are the same width object.
    """

    def __init__(self, c_in, c_out, kernel, stride: int, mid, se: bool):
        super().__init__()
        self.expand = ConvBN(c_in, mid, 1)
        self.depthwise = ConvBN(mid, mid, kernel, stride, groups=mid)
        self.se = SqueezeExcite(mid) if se else None
        self.project = ConvBN(mid, c_out, 1, relu=False)
        self.residual = stride == 1 and c_in is c_out

    def forward(self, x):
        y = self.depthwise(self.expand(x))
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y
