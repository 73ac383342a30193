"""SPACH (Zhao et al., "A Battle of Network Structures", 2021) as an NNI 3.0 ModelSpace, multi-stage variant.

SPACH's unified framework separates spatial mixing from channel mixing.  A network is

* a patch-embedding stem: a ``patch`` x ``patch`` conv with stride ``patch`` (+ LayerNorm over channels);
* stages; stage i > 1 starts with patch merging (2 x 2 conv, stride 2, + LayerNorm), so stage i runs at
  ``resolution // patch // 2**(i-1)`` pixels a side;
* in each stage a ``Repeat`` of blocks ``x + mixer(norm(x))`` then ``x + channel_mlp(norm(x))`` (pre-norm,
  residuals), the spatial mixer chosen per stage among

  - ``"conv"``: depthwise k x k conv (``kernel``, default 3);
  - ``"attention"``: multi-head self-attention over the stage's tokens (``width // head_dim`` heads);
  - ``"mlp"``: token-mixing MLP over the spatial positions, T -> ``round(T * token_ratio)`` -> T with
    T = (side of the stage)^2 fixed by the stage's resolution (weights shared over channels);

  and the channel MLP: 1x1 conv width -> ``ratio`` * width -> width with GELU;
* a head: LayerNorm, global average pool (``x.mean((2, 3))``), Linear to the classes.

Labels (a choice list with one value is a constant, not a label), i = 1..number of stages:
``s{i}_width`` (the stage's channels), ``s{i}_depth`` (blocks), ``s{i}_mixer`` (``"conv"`` / ``"attention"``
/ ``"mlp"``, shared by the stage's blocks), ``s{i}_ratio`` (channel-MLP expansion).

Counting (NNI's ``FlopsProfiler`` / ``NumParamsProfiler`` on the space equal the same profilers on the frozen
module, and ``NumParamsProfiler`` equals ``sum(p.numel())``): convs and Linear layers use NNI's own
formulas; the modules NNI has no formula for carry their own ``_shape_forward`` / ``_count_flops`` (nothing
is registered in NNI's global tables):

* :class:`LayerNorm2d`: params 2 * C; FLOPs 4 * C * H * W (NNI's BatchNorm rule); both only when
  ``count_normalization`` (NNI's convention for normalisation);
* :class:`GELU`: FLOPs C * H * W when ``count_activation``;
* :class:`SelfAttention`: params 4 * C * (C + 1) (qkv and output projections, biases always counted, as
  NNI does); FLOPs (MACs) T * 3C * C (qkv) + T^2 * C (Q K^T) + T^2 * C (A V) + T * C * C (projection),
  plus T * 4C bias additions when ``count_bias``, plus heads * T^2 (softmax) + T * C (scaling) when
  ``count_activation``;
* :class:`TokenMixingMLP`: params 2 * T * Th + Th + T; FLOPs (MACs) C * 2 * T * Th, plus C * (Th + T) bias
  additions when ``count_bias``, plus C * Th (GELU) when ``count_activation``.

With ``count_normalization=False, count_activation=False, count_bias=False`` the FLOPs are the MACs of every
conv, Linear and matrix product (torch's ``FlopCounterMode`` / 2 on batch 1).

DeepMAD's reader (:func:`deepmad_nni.nas.reader.read_space`) refuses attention and token-mixing stages
(both run ``torch.matmul`` over the tokens); see docs/spach.md for the convolution-only subspace
(``spach_space(name, mixers=("conv",))``).
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field

import nni
import torch
import torch.nn.functional as F
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableConv2d, MutableLinear, ParametrizedModule, Repeat
from torch import nn

MIXERS = ("conv", "attention", "mlp")

__all__ = ["MIXERS", "SPACH_CONFIGS", "GELU", "LayerNorm2d", "SelfAttention", "SpachConfig", "SpachSpace",
           "SpachStage", "TokenMixingMLP", "spach_space"]


# -- configuration --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpachStage:
    """Choices of one stage: widths (channels), depths (blocks) and channel-MLP expansions."""

    widths: tuple[int, ...]
    depths: tuple[int, ...] = (1,)
    ratios: tuple[int, ...] = (4,)


@dataclass(frozen=True)
class SpachConfig:
    """A SPACH space: input, patch size, stages, attention head width, token-MLP ratio, the mixers offered."""

    name: str
    resolution: int
    num_classes: int
    patch: int
    stages: tuple[SpachStage, ...]
    head_dim: int = 32
    token_ratio: float = 0.5
    kernel: int = 3
    mixers: tuple[str, ...] = MIXERS
    in_channels: int = 3
    description: str = field(default="", compare=False)

    def __post_init__(self):
        for attr in ("resolution", "num_classes", "patch", "head_dim", "kernel", "in_channels"):
            v = getattr(self, attr)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{attr} must be a positive integer, but got {v!r}.")
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (same padding), but got {self.kernel}.")
        if not self.stages:
            raise ValueError("stages must be non-empty, but got ().")
        step = self.patch * 2 ** (len(self.stages) - 1)
        if self.resolution % step:
            raise ValueError(f"resolution must be a multiple of patch * 2**(stages - 1) = {step}, "
                             f"but got {self.resolution}.")
        if not isinstance(self.mixers, tuple) or not self.mixers or len(set(self.mixers)) != len(self.mixers) \
                or any(m not in MIXERS for m in self.mixers):
            raise ValueError(f"mixers must be a non-empty tuple of distinct names from {MIXERS}, "
                             f"but got {self.mixers!r}.")
        if not isinstance(self.token_ratio, (int, float)) or isinstance(self.token_ratio, bool) \
                or not self.token_ratio > 0:
            raise ValueError(f"token_ratio must be positive, but got {self.token_ratio!r}.")
        for i, s in enumerate(self.stages):
            for attr, values in (("widths", s.widths), ("depths", s.depths), ("ratios", s.ratios)):
                if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values) \
                        or len(set(values)) != len(values):
                    raise ValueError(f"stages[{i}].{attr} must be distinct positive integers, but got {values!r}.")
            if any(w % self.head_dim for w in s.widths):
                raise ValueError(f"stages[{i}].widths must be multiples of head_dim={self.head_dim}, "
                                 f"but got {s.widths}.")

    def labels(self) -> dict[str, tuple]:
        """The space's labels and their values, in the order NNI lists them (``space.simplify()``)."""
        out = {}
        for i, s in enumerate(self.stages, start=1):
            for label, values in ((f"s{i}_width", s.widths), (f"s{i}_ratio", s.ratios),
                                  (f"s{i}_depth", s.depths), (f"s{i}_mixer", self.mixers)):
                if len(values) > 1:
                    out[label] = tuple(values)
        return out

    def side(self, stage: int) -> int:
        """Pixels a side of stage ``stage`` (0-based)."""
        return self.resolution // self.patch // 2 ** stage

    def tokens(self, stage: int) -> int:
        """Token count T of stage ``stage`` (0-based): its side squared."""
        return self.side(stage) ** 2

    def hidden_tokens(self, stage: int) -> int:
        """Hidden width of the token-mixing MLP of stage ``stage`` (0-based)."""
        return max(1, round(self.tokens(stage) * self.token_ratio))


def _cifar(name, widths, depths, description, head_dim=16):
    stages = tuple(SpachStage(w, d) for w, d in zip(widths, depths))
    return SpachConfig(name, 32, 10, 2, stages, head_dim=head_dim, description=description)


SPACH_CONFIGS = {c.name: c for c in (
    # 32 px, 10 classes: patch 2, stages at 16, 8, 4 pixels a side (256, 64, 16 tokens)
    _cifar("spach-cifar", ((32, 48), (64, 96), (128, 160)), ((1, 2), (1, 2), (1, 2)),
           "SPACH multi-stage, CIFAR scale: 2x2 patch stem, 3 stages, conv / attention / token-MLP mixers"),
    # 224 px, 1000 classes: patch 4, stages at 56, 28, 14, 7 pixels a side
    SpachConfig("spach-224", 224, 1000, 4, (
        SpachStage((64, 96), (1, 2)), SpachStage((128, 192), (1, 2)),
        SpachStage((256, 320), (2, 3, 4)), SpachStage((512, 640), (1, 2))), head_dim=32, token_ratio=0.25,
        description="SPACH multi-stage, ImageNet scale: 4x4 patch stem, 4 stages, conv / attention / token-MLP"),
)}


def spach_space(name: str = "spach-cifar", *, mixers=None) -> "SpachSpace":
    """The NNI ModelSpace of a SPACH preset (see ``SPACH_CONFIGS``); ``mixers`` restricts the spatial mixers
    offered (e.g. ``("conv",)`` for the convolution-only subspace)."""
    if name not in SPACH_CONFIGS:
        raise ValueError(f"name must be one of {sorted(SPACH_CONFIGS)}, but got {name!r}.")
    config = SPACH_CONFIGS[name]
    if mixers is not None:
        config = dataclasses.replace(config, mixers=tuple(mixers) if isinstance(mixers, (list, tuple)) else mixers)
    return SpachSpace(config)


# -- modules NNI has no formula for -------------------------------------------------------------------

def _keep_shape(self, x):
    return x.real_shape


class _Leaf(ParametrizedModule):
    """A module NNI's profilers treat as one unit (its own ``_shape_forward`` / ``_count_flops``); its init
    arguments may be NNI choices.  Frozen, it is the same class with plain values."""

    __repr__ = nn.Module.__repr__   # ParametrizedModule's repr reads trace arguments a frozen copy lacks


def _arg(module, name: str):
    """An init argument as given (an NNI choice in the space, an int in a frozen module)."""
    given = getattr(module, "trace_kwargs", None)   # recorded in the space only, not under a frozen context
    return given[name] if given and name in given else getattr(module, name)


class LayerNorm2d(_Leaf):
    """LayerNorm over the channels of an (N, C, H, W) tensor, at every position (affine)."""

    def __init__(self, channels, eps: float = 1e-6):
        super().__init__()
        self.channels, self.eps = channels, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def extra_repr(self) -> str:
        return f"{_arg(self, 'channels')}, eps={self.eps}"

    def forward(self, x):
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.channels,), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)

    _shape_forward = _keep_shape

    def _count_flops(self, x, y, count_normalization: bool = True):
        from nni.nas.profiler.pytorch.flops import FlopsResult
        if not count_normalization:
            return FlopsResult(0, 0)
        c = _arg(self, "channels")
        return FlopsResult(4 * c * x[0][2] * x[0][3], 2 * c)


class GELU(nn.GELU):
    """``nn.GELU`` with NNI formulas (element-wise, counted when ``count_activation``)."""

    _shape_forward = _keep_shape

    def _count_flops(self, x, y, count_activation: bool = True):
        from nni.nas.profiler.pytorch.flops import FlopsResult
        return FlopsResult(x[0][1:].numel() if count_activation else 0, 0)


class SelfAttention(_Leaf):
    """Multi-head self-attention over the H * W tokens of an (N, C, H, W) tensor; ``dim // head_dim`` heads."""

    def __init__(self, dim, head_dim: int):
        super().__init__()
        self.dim, self.head_dim, self.heads = dim, head_dim, dim // head_dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def extra_repr(self) -> str:
        return f"dim={_arg(self, 'dim')}, head_dim={self.head_dim}"

    def forward(self, x):
        n, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)                                        # (N, T, C)
        q, k, v = self.qkv(t).reshape(n, h * w, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = torch.matmul(q * self.head_dim ** -0.5, k.transpose(-2, -1)).softmax(dim=-1)   # (N, heads, T, T)
        y = torch.matmul(attn, v)                                               # (N, heads, T, head_dim)
        y = self.proj(y.transpose(1, 2).reshape(n, h * w, c))
        return y.transpose(1, 2).reshape(n, c, h, w)

    _shape_forward = _keep_shape

    def _count_flops(self, x, y, count_bias: bool = True, count_activation: bool = True):
        from nni.nas.profiler.pytorch.flops import FlopsResult
        c = _arg(self, "dim")
        t = x[0][2] * x[0][3]
        flops = t * 4 * c * c + 2 * t * t * c          # qkv + projection, Q K^T, A V (MACs)
        if count_bias:
            flops = flops + t * 4 * c
        if count_activation:
            flops = flops + (c // self.head_dim) * t * t + t * c   # softmax, scaling
        return FlopsResult(flops, 4 * c * (c + 1))


class TokenMixingMLP(_Leaf):
    """MLP over the ``tokens`` = H * W positions of an (N, C, H, W) tensor, shared over channels:
    T -> ``hidden`` -> T with GELU (matrix products over the spatial axis)."""

    def __init__(self, tokens: int, hidden: int):
        super().__init__()
        self.tokens, self.hidden = tokens, hidden
        self.weight1 = nn.Parameter(torch.empty(hidden, tokens))
        self.bias1 = nn.Parameter(torch.zeros(hidden))
        self.weight2 = nn.Parameter(torch.empty(tokens, hidden))
        self.bias2 = nn.Parameter(torch.zeros(tokens))
        nn.init.trunc_normal_(self.weight1, std=0.02)
        nn.init.trunc_normal_(self.weight2, std=0.02)

    def extra_repr(self) -> str:
        return f"tokens={self.tokens}, hidden={self.hidden}"

    def forward(self, x):
        n, c, h, w = x.shape
        if h * w != self.tokens:
            raise ValueError(f"The token-mixing MLP needs {self.tokens} positions, but got {h} x {w}.")
        y = F.gelu(torch.matmul(x.reshape(n, c, h * w), self.weight1.t()) + self.bias1)
        return (torch.matmul(y, self.weight2.t()) + self.bias2).reshape(n, c, h, w)

    _shape_forward = _keep_shape

    def _count_flops(self, x, y, count_bias: bool = True, count_activation: bool = True):
        from nni.nas.profiler.pytorch.flops import FlopsResult
        c, t, th = x[0][1], self.tokens, self.hidden
        flops = c * 2 * t * th
        if count_bias:
            flops = flops + c * (th + t)
        if count_activation:
            flops = flops + c * th
        return FlopsResult(flops, 2 * t * th + th + t)


# -- blocks -------------------------------------------------------------------------------------------

class ConvMixer(nn.Module):
    """Depthwise k x k conv (bias), same padding."""

    def __init__(self, dim, kernel: int):
        super().__init__()
        self.conv = MutableConv2d(dim, dim, kernel, 1, kernel // 2, groups=dim)

    def forward(self, x):
        return self.conv(x)


class ChannelMLP(nn.Module):
    """1x1 conv dim -> hidden, GELU, 1x1 conv hidden -> dim (biases)."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = MutableConv2d(dim, hidden, 1)
        self.act = GELU()
        self.fc2 = MutableConv2d(hidden, dim, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Downsample(nn.Module):
    """Patch embedding / merging: k x k conv with stride k (bias), then LayerNorm2d."""

    def __init__(self, c_in, c_out, patch: int):
        super().__init__()
        self.conv = MutableConv2d(c_in, c_out, patch, patch)
        self.norm = LayerNorm2d(c_out)

    def forward(self, x):
        return self.norm(self.conv(x))


class SpachBlock(nn.Module):
    """``x + mixer(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim, ratio, mixer: nn.Module):
        super().__init__()
        self.norm1 = LayerNorm2d(dim)
        self.mixer = mixer
        self.norm2 = LayerNorm2d(dim)
        self.mlp = ChannelMLP(dim, dim * ratio)

    def forward(self, x):
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _value(label: str, values):
    return values[0] if len(values) == 1 else nni.choice(label, list(values))


class SpachSpace(ModelSpace):
    """NNI ModelSpace of a :class:`SpachConfig` (see the module docstring for its layout and labels)."""

    def __init__(self, config: SpachConfig):
        super().__init__()
        self.config = config
        c_in = config.in_channels
        stages = []
        for i, s in enumerate(config.stages):
            width = _value(f"s{i + 1}_width", s.widths)
            ratio = _value(f"s{i + 1}_ratio", s.ratios)
            depth = _value(f"s{i + 1}_depth", s.depths)
            down = Downsample(c_in, width, config.patch if i == 0 else 2)
            blocks = Repeat(self._block_builder(config, i, width, ratio), depth)
            stages.append(nn.Sequential(OrderedDict(down=down, blocks=blocks)))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.norm = LayerNorm2d(c_in)
        self.fc = MutableLinear(c_in, config.num_classes)

    @staticmethod
    def _block_builder(config: SpachConfig, i: int, width, ratio):
        def mixer(kind: str) -> nn.Module:
            if kind == "conv":
                return ConvMixer(width, config.kernel)
            if kind == "attention":
                return SelfAttention(width, config.head_dim)
            return TokenMixingMLP(config.tokens(i), config.hidden_tokens(i))

        def build(index: int) -> nn.Module:
            if len(config.mixers) == 1:
                m = mixer(config.mixers[0])
            else:   # one label per stage: every block of the stage uses the same mixer
                m = LayerChoice({kind: mixer(kind) for kind in config.mixers}, label=f"s{i + 1}_mixer")
            return SpachBlock(width, ratio, m)
        return build

    def forward(self, x):
        x = self.norm(self.stages(x))
        return self.fc(x.mean((2, 3)))  # not adaptive_avg_pool2d: NNI shape inference has no formula for it
