"""Latency units of a space read by :func:`deepmad_nni.nas.reader.read_space`: the rows of a latency table.

A unit is one layer of the space at one configuration, together with the work the space does on the layer's
output before anything else reads it, found in the space's dataflow (:func:`deepmad_nni.nas.trace.trace`, one
dry run, no candidate frozen):

``space-conv``    an optional global mean pool the conv reads (``pool_hw``: the pooled H*W; SE's squeeze, a head's
                  ``AdaptiveAvgPool2d(1)``), the conv (c_in, c_out, kernel, stride, groups, bias, padding k // 2) on
                  a ``c_in x h x w`` input, then its ``tail``: the unary ops its output goes through while it has a
                  single reader (``bn``, ``relu``, ``hardswish``, ...; dropout passes), a residual ``add`` of a
                  same-size tensor (more unary ops may follow), or a final ``mul`` gating a ``c_out x gate_hw``
                  tensor (SE's excite).
``space-linear``  ``Linear(c_in, c_out)`` on a vector (the classifier).

A unit's numbers are the layer's reader Terms at a sample (channels, kernel, groups: each a function of a few
labels) and what the dataflow fixes (stride, input size, pool, tail); so :meth:`SpaceUnits.units` enumerates,
layer by layer, the combinations of that layer's own labels, never the space.  A sample runs the units of its
active layers (:meth:`SpaceUnits.of`); its predicted latency is the sum of their
:meth:`~deepmad_nni.core.latency.LatencyTable.unit_ms`: the entries, calibrated when the table is (a fit on
networks of this space measured end to end, :mod:`.space_calibration`).  Reshapes, the eval-mode dropout,
concatenations and splits, ops the tail rules do not fold, and the Python cost of the containers around the
units are no unit; only the calibration (its scale and per-unit constant) accounts for them.  Keys start with ``space-``, apart from the
core families' units (:mod:`deepmad_nni.core.latency_units`); both live in the same table format.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import math
from dataclasses import dataclass

KINDS = ("space-conv", "space-linear")
_INTS = ("c_in", "c_out", "kernel", "stride", "groups", "h", "w", "bias", "pool_hw", "gate_hw")
ENUMERATION_LIMIT = 200_000     # most label combinations enumerated for one layer

# trace op names -> tail tokens (docstring); inplace variants included
_UNARY = {"batch_norm": "bn", "relu": "relu", "relu_": "relu", "relu6": "relu6", "hardtanh": "relu6",
          "hardtanh_": "relu6", "hardswish": "hardswish", "hardswish_": "hardswish", "hardsigmoid": "hardsigmoid",
          "hardsigmoid_": "hardsigmoid", "silu": "silu", "silu_": "silu", "sigmoid": "sigmoid",
          "sigmoid_": "sigmoid", "tanh": "tanh", "gelu": "gelu"}
_PASS = ("dropout", "contiguous")                       # no work in eval mode: the tail goes on past them
_ADD = ("add", "__add__", "__radd__", "add_", "__iadd__")
_MUL = ("mul", "__mul__", "__rmul__", "mul_", "__imul__")
_POOL = ("mean", "adaptive_avg_pool2d", "avg_pool2d")


@dataclass(frozen=True, order=True)
class SpaceUnit:
    """One layer of a read space at one configuration (module docstring); ``h x w`` its input size."""

    kind: str
    c_in: int
    c_out: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    h: int = 1
    w: int = 1
    bias: bool = False
    pool_hw: int = 0
    gate_hw: int = 0
    tail: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"SpaceUnit.kind must be one of {KINDS}, but got {self.kind!r}.")

    @property
    def out_hw(self) -> int:
        return -(-self.h // self.stride) * -(-self.w // self.stride)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the unit's conv or linear layer."""
        if self.kind == "space-linear":
            return self.c_in * self.c_out
        return self.c_in // self.groups * self.c_out * self.kernel ** 2 * self.out_hw

    @property
    def activation_elements(self) -> int:
        """Elements per sample the unit reads and writes: its input (the pooled one), its output, a residual
        operand, a gated tensor read and written."""
        if self.kind == "space-linear":
            return self.c_in + self.c_out
        out = self.c_out * self.out_hw
        read = self.c_in * (self.pool_hw or self.h * self.w)
        tokens = self.tail.split("+")
        return read + out + ("add" in tokens) * out + ("mul" in tokens) * 2 * self.c_out * self.gate_hw

    @property
    def weight_elements(self) -> int:
        """Elements of the unit's weights: conv/linear, bias, BatchNorm's folded scale and shift."""
        if self.kind == "space-linear":
            return (self.c_in + self.bias) * self.c_out
        bn = "bn" in self.tail.split("+")
        return self.c_in // self.groups * self.c_out * self.kernel ** 2 + (self.bias + 2 * bn) * self.c_out

    def megabytes(self, batch_size: int) -> float:
        """float32 megabytes the unit moves at ``batch_size``: activations per sample times the batch, weights once
        (the regressor of a table's calibration, :func:`deepmad_nni.core.latency.fit_calibration`)."""
        return 4e-6 * (batch_size * self.activation_elements + self.weight_elements)

    def key(self) -> str:
        """``"space-conv 16 64 1 1 1 56 56 0 0 0 bn+relu"``: the kind, :data:`_INTS`, the tail (``-``: none)."""
        return " ".join([self.kind] + [str(int(getattr(self, f))) for f in _INTS] + [self.tail or "-"])

    @classmethod
    def from_key(cls, key: str) -> "SpaceUnit":
        parts = str(key).split()
        if len(parts) != len(_INTS) + 2 or parts[0] not in KINDS:
            raise ValueError(f"a read-space unit key must be a kind of {KINDS}, {len(_INTS)} integers {_INTS} and a "
                             f"tail, but got {key!r}.")
        try:
            values = dict(zip(_INTS, (int(p) for p in parts[1:-1])))
        except ValueError:
            raise ValueError(f"a read-space unit key must hold integers after its kind, but got {key!r}.") from None
        values["bias"] = bool(values["bias"])
        return cls(parts[0], tail="" if parts[-1] == "-" else parts[-1], **values)


@dataclass(frozen=True)
class _Layer:
    """A layer of the space: its Terms (c_in, c_out, kernel, groups), activity conditions, and what the dataflow
    fixes of its unit."""

    name: str
    kind: str
    terms: tuple
    conditions: tuple
    fixed: dict

    @property
    def labels(self) -> tuple:
        """Labels the unit depends on (not those deciding whether the layer runs)."""
        return tuple(sorted({lab for t in self.terms for lab in t.labels}))

    @property
    def scope(self) -> tuple:
        """Labels the layer's latency depends on: its unit's and its conditions'."""
        return tuple(sorted(set(self.labels) | {lab for c in self.conditions for lab in c.value.labels}))

    def active(self, sample) -> bool:
        return all(c(sample) for c in self.conditions)

    def unit(self, sample) -> SpaceUnit:
        c_in, c_out, kernel, groups = (int(t(sample)) for t in self.terms)
        return SpaceUnit(self.kind, c_in, c_out, kernel, groups=groups, **self.fixed)


class SpaceUnits:
    """The latency units of a read space: every layer's, per sample (:meth:`of`) and all of them (:meth:`units`).

    ``space``: the NNI model space ``desc`` was read from (:func:`~deepmad_nni.nas.reader.read_space`); its spatial
    sizes must not depend on the sample (true of the hub spaces: odd kernels with padding (k - 1) // 2)."""

    def __init__(self, space, desc):
        from torch import nn

        from .reader import Term, UnsupportedModuleError, _args
        from .trace import trace
        varying = [layer.name for layer in desc.layers if layer.out_hw.labels]
        if varying:
            raise UnsupportedModuleError(f"latency units need spatial sizes that do not depend on the sample, but "
                                         f"the output size of conv {varying[0]!r} does.")
        graph = trace(space, desc.input_size)
        users: dict[int, list[int]] = {}
        for v, ins in graph.inputs.items():
            for i in ins:
                users.setdefault(i, []).append(v)
        calls = {c.name: c for c in graph.convs}
        self.layers = [_Layer(layer.name, "space-conv", (layer.c_in, layer.c_out, layer.kernel, layer.groups),
                              layer.conditions, _conv_fixed(graph, users, calls[layer.name], layer.stride))
                       for layer in desc.layers]
        modules = dict(space.named_modules())
        for cost in desc.costs:
            m = modules.get(cost.name)
            if isinstance(m, nn.Linear):
                self.layers.append(_Layer(cost.name, "space-linear", (Term(_args(m, "in_features")),
                                   Term(_args(m, "out_features")), Term(1), Term(1)), cost.conditions,
                                   {"bias": m.bias is not None}))
        self.mutables = desc.mutables
        self.input_size = tuple(desc.input_size)
        self.space_name = f"{type(space).__module__}.{type(space).__qualname__}"
        self._all = None
        self._checked: dict = {}

    def combinations(self, layer: _Layer):
        """Every sample of ``layer``'s own labels (a dict over those labels only)."""
        labels = layer.labels
        values = [self.mutables[lab].values for lab in labels]
        count = math.prod(len(v) for v in values)
        if count > ENUMERATION_LIMIT:
            raise ValueError(f"layer {layer.name!r} depends on labels {list(labels)} with {count} combinations; "
                             f"latency units are enumerated per layer up to {ENUMERATION_LIMIT}.")
        return (dict(zip(labels, combo)) for combo in itertools.product(*values))

    def units(self) -> list[SpaceUnit]:
        """Every distinct unit a sample of the space can run, sorted."""
        if self._all is None:
            self._all = sorted({layer.unit(s) for layer in self.layers for s in self.combinations(layer)})
        return self._all

    def of(self, sample: dict) -> list[SpaceUnit]:
        """The units the network of ``sample`` (every label) runs, in order."""
        return [layer.unit(sample) for layer in self.layers if layer.active(sample)]

    @functools.cached_property
    def space_id(self) -> str:
        """The space in a table's ``coverage``: its class, input (C x H x W) and a digest of its units."""
        digest = hashlib.sha1("\n".join(u.key() for u in self.units()).encode()).hexdigest()[:12]
        c, h, w = self.input_size[1:]
        return f"space {self.space_name} {c}x{h}x{w} {digest}"

    def check(self, table) -> None:
        """A ValueError when ``table`` (a LatencyTable) lacks a unit of this space, or was calibrated on networks
        of something else (a family, another space)."""
        if self._checked.get(id(table)) == len(table.entries):
            return
        self.check_calibration(table)
        missing = [u for u in self.units() if u.key() not in table.entries]
        if missing:
            coverage = sorted(table.settings.get("coverage", {}))
            raise ValueError(f"the latency table does not cover {self.space_id}: {len(missing)} of its "
                             f"{len(self.units())} units are missing (e.g. {missing[0].key()!r}); the table was "
                             f"profiled for {coverage or 'nothing'} ({table.describe()}); profile this space with "
                             "deepmad-nni latency profile --space module:attribute.")
        self._checked[id(table)] = len(table.entries)

    def check_calibration(self, table) -> None:
        """A ValueError when ``table`` is calibrated on networks of something else (a family, another space): a
        table holds one calibration (:mod:`deepmad_nni.nas.space_calibration`)."""
        fitted = table.settings.get("calibration") or {}
        if fitted and fitted.get("space") != self.space_id:
            other = fitted.get("space") or fitted.get("family")
            raise ValueError(f"the latency table's calibration was fitted on {other!r}, not on {self.space_id}; "
                             "profile this space into a table of its own.")

    def predicted_latency(self, sample: dict, table) -> float:
        """Milliseconds ``table`` predicts for the network of ``sample``: its units'
        :meth:`~deepmad_nni.core.latency.LatencyTable.unit_ms` summed (the entries, calibrated when the table is)."""
        self.check(table)
        return float(sum(table.unit_ms(u) for u in self.of(sample)))


def _conv_fixed(graph, users, call, stride) -> dict:
    """What the dataflow fixes of a conv's unit: stride, input size, the pool it reads, its tail (docstring)."""
    tokens, node, gate_hw = [], call.dst, 0
    while len(users.get(node, ())) == 1:
        nxt = users[node][0]
        kind, ins = graph.kind[nxt], graph.inputs[nxt]
        if ins == [node] and kind in _UNARY:
            tokens.append(_UNARY[kind])
        elif ins == [node] and kind in _PASS:
            pass
        elif kind in _ADD and len(ins) == 2 and "add" not in tokens and all(
                graph.numel[i] == graph.numel[node] for i in ins):
            tokens.append("add")
        elif kind in _MUL and len(ins) == 2 and graph.numel[nxt] > graph.numel[node]:
            tokens.append("mul")
            gate_hw = graph.spatial[nxt]
            break
        else:
            break
        node = nxt
    src, pool_hw = call.src, 0
    if (graph.kind.get(src) in _POOL and graph.spatial[src] == 1 and len(users.get(src, ())) == 1
            and graph.inputs[src] and graph.spatial[graph.inputs[src][0]] > 1):
        pool_hw = graph.spatial[graph.inputs[src][0]]
    shape = graph.io_shapes[call.name][0][0]
    h, w = (int(shape[2]), int(shape[3])) if len(shape) == 4 else (1, 1)
    return {"stride": int(stride), "h": h, "w": w, "bias": call.module.bias is not None, "pool_hw": pool_hw,
            "gate_hw": gate_hw, "tail": "+".join(tokens)}


# -- timing (torch) ------------------------------------------------------------------------------------------------
def _activation(token):
    from torch import nn
    return {"relu": lambda: nn.ReLU(inplace=True), "relu6": lambda: nn.ReLU6(inplace=True),
            "hardswish": lambda: nn.Hardswish(inplace=True), "hardsigmoid": lambda: nn.Hardsigmoid(inplace=True),
            "silu": lambda: nn.SiLU(inplace=True), "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU}[token]()


def unit_callable(unit: SpaceUnit, *, batch_size: int, device: str):
    """A no-argument callable running ``unit`` once on fixed random inputs (eval mode): the pool, the conv and
    its tail, each op called as the space calls it (a module, or ``+`` / ``*`` with a fixed other tensor)."""
    import torch
    from torch import nn

    def randn(*shape):
        return torch.randn(batch_size, *shape, device=device)

    def square(hw):
        side = int(round(hw ** 0.5))
        return (side, side) if side * side == hw else (hw, 1)

    if unit.kind == "space-linear":
        linear = nn.Linear(unit.c_in, unit.c_out, bias=unit.bias).to(device).eval()
        v = randn(unit.c_in)
        return lambda: linear(v)
    x = randn(unit.c_in, *(square(unit.pool_hw) if unit.pool_hw else (unit.h, unit.w)))
    steps = [nn.Conv2d(unit.c_in, unit.c_out, unit.kernel, unit.stride, unit.kernel // 2, groups=unit.groups,
                       bias=unit.bias).to(device).eval()]
    for token in filter(None, unit.tail.split("+")):
        if token == "add":
            other = randn(unit.c_out, -(-unit.h // unit.stride), -(-unit.w // unit.stride))
            steps.append(lambda y, other=other: y + other)
        elif token == "mul":
            gated = randn(unit.c_out, *square(unit.gate_hw))
            steps.append(lambda y, gated=gated: gated * y)
        else:
            steps.append((nn.BatchNorm2d(unit.c_out) if token == "bn" else _activation(token)).to(device).eval())

    def run():
        y = x.mean((2, 3), keepdim=True) if unit.pool_hw else x
        for step in steps:
            y = step(y)
        return y
    return run
