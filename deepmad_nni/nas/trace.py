"""Dataflow of a CNN (an NNI ModelSpace or a plain torch module), from one dry run with real tensors.

Every torch function call becomes a node per output tensor with edges from its tensor inputs.  Inside a
ModelSpace every LayerChoice candidate and every Repeat block is run, and their outputs meet in a "choice"
node (alternatives, not a merge).  Convs are the edges counted by DeepMAD; :func:`main_path` keeps the convs
on the longest (most convs) input -> output path, where a broadcast multiplication follows only its
full-size operand (a gate, e.g. squeeze-and-excitation) and an addition or concatenation follows its
operand(s) with the most convs (so residual projections are left out).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

_CONV = {torch.conv2d, F.conv2d}
_UNSUPPORTED = ("matmul", "bmm", "einsum", "attention", "conv1d", "conv3d", "conv_transpose", "baddbmm", "unfold",
                "addmm", "mm")
_POOL = ("mean", "adaptive_avg_pool2d", "adaptive_max_pool2d", "amax", "sum", "avg_pool2d", "max_pool2d")


class UnsupportedModuleError(ValueError):
    """A part of the network the reader cannot reason about (attention, unknown ops)."""


@dataclass
class ConvCall:
    name: str
    module: nn.Module
    src: int          # input node
    dst: int          # output node
    scope: tuple      # enclosing (kind, module name, label) of LayerChoice / Repeat, outermost first


@dataclass
class Graph:
    inputs: dict = field(default_factory=dict)       # node -> list of input nodes
    kind: dict = field(default_factory=dict)         # node -> op name or "choice" / "input"
    numel: dict = field(default_factory=dict)
    spatial: dict = field(default_factory=dict)      # node -> H * W (or 1 when no spatial dims)
    convs: list = field(default_factory=list)        # ConvCall in execution order
    conv_of_node: dict = field(default_factory=dict)  # output node -> index in convs
    producer: dict = field(default_factory=dict)     # node -> outermost module name returning it
    consumers_of_module: dict = field(default_factory=dict)  # module name -> input node
    output: int = -1
    io_shapes: dict = field(default_factory=dict)   # module name -> (input shapes, output shape), first call


def _label_of(module) -> str | None:
    return getattr(module, "label", None)


class _Tracer(TorchFunctionMode):
    def __init__(self, root: nn.Module):
        super().__init__()
        self.g = Graph()
        self.node_of: dict[int, int] = {}
        self.alive: list = []
        self.stack: list[tuple[str, nn.Module]] = []
        self.scope: list[tuple] = []
        self.names = {id(m): n for n, m in root.named_modules()}
        self.paused = False

    # -- nodes --------------------------------------------------------------------------------------
    def new_node(self, t: torch.Tensor, kind: str, inputs: list[int]) -> int:
        n = len(self.g.kind)
        self.g.kind[n], self.g.inputs[n] = kind, inputs
        self.g.numel[n] = t.numel()
        self.g.spatial[n] = int(t.shape[-1] * t.shape[-2]) if t.dim() >= 3 else 1
        self.node_of[id(t)] = n
        self.alive.append(t)
        return n

    def node(self, t) -> int | None:
        return self.node_of.get(id(t)) if isinstance(t, torch.Tensor) else None

    def where(self) -> str:
        name = self.stack[-1][0] if self.stack else "<root>"
        labels = [s[2] for s in self.scope if s[2]]
        return f"module {name!r}" + (f" (label {labels[-1]!r})" if labels else "")

    # -- function calls -----------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.paused:
            return out
        flat_in, _ = tree_flatten((args, kwargs))
        ins = [n for n in (self.node(t) for t in flat_in) if n is not None]
        if not ins:
            return out
        fname = getattr(func, "__name__", str(func))
        if any(u in fname for u in _UNSUPPORTED) and not (fname == "addmm" and len(ins) == 1):
            raise UnsupportedModuleError(f"The reader does not support {fname} (in {self.where()}): DeepMAD's "
                                         "entropy is defined for convolutional networks only.")
        flat_out, _ = tree_flatten(out)
        outs = [t for t in flat_out if isinstance(t, torch.Tensor)]
        if func in _CONV:
            top = self.stack[-1] if self.stack else None
            if top is None or not isinstance(top[1], nn.Conv2d):
                raise UnsupportedModuleError(f"A functional conv2d outside an nn.Conv2d module (in {self.where()}) "
                                             "cannot be read.")
            mod = top[1]
            if tuple(mod.dilation) != (1, 1):
                raise UnsupportedModuleError(f"Dilated conv {top[0]!r} is not supported.")
            dst = self.new_node(outs[0], "conv", ins[:1])
            self.g.conv_of_node[dst] = len(self.g.convs)
            self.g.convs.append(ConvCall(top[0], mod, ins[0], dst, tuple(self.scope)))
            return out
        for t in outs:
            self.new_node(t, fname, ins)
        return out

    def choice(self, inputs: list[torch.Tensor], out: torch.Tensor) -> None:
        self.paused = True
        try:
            y = out.clone()
        finally:
            self.paused = False
        self.new_node(y, "choice", [self.node(t) for t in inputs])
        return y


def _patched_forwards(tracer: _Tracer, root: nn.Module):
    """Instance-level forwards of LayerChoice / Repeat that run every candidate / block."""
    from nni.nas.nn.pytorch import InputChoice, LayerChoice, MutableModule, Repeat

    patched = []
    for name, m in root.named_modules():
        if isinstance(m, LayerChoice):
            def lc_forward(*xs, _m=m, _name=name):
                outs = []
                for key, child in _m.named_children():
                    tracer.scope.append(("choice", _name, _m.label, key))
                    try:
                        outs.append(child(*xs))
                    finally:
                        tracer.scope.pop()
                return tracer.choice(outs, outs[0])
            patched.append((m, lc_forward))
        elif isinstance(m, Repeat):
            def rep_forward(x, _m=m, _name=name):
                from nni.mutable import Mutable
                depths = sorted(set(_m.depth_choice.grid())) if isinstance(_m.depth_choice, Mutable) \
                    else [_m.depth_choice]
                outs = [x]
                for i, block in enumerate(_m.blocks):
                    tracer.scope.append(("repeat", _name, _m.label, i))
                    try:
                        outs.append(block(outs[-1]))
                    finally:
                        tracer.scope.pop()
                alts = [outs[d] for d in depths]
                return tracer.choice(alts, alts[-1]) if len(alts) > 1 else alts[0]
            patched.append((m, rep_forward))
        elif isinstance(m, InputChoice):
            raise UnsupportedModuleError(f"InputChoice {name!r} (label {m.label!r}) is not supported by the reader.")
        elif isinstance(m, MutableModule) and type(m).__module__.startswith("nni.nas.nn.pytorch.cell"):
            raise UnsupportedModuleError(f"Cell {name!r} is not supported by the reader.")
        elif isinstance(m, nn.MultiheadAttention):
            raise UnsupportedModuleError(f"Attention module {name!r} ({type(m).__name__}) is not supported: "
                                         "DeepMAD's entropy is defined for convolutional networks only.")
    return patched


def trace(root: nn.Module, input_size) -> Graph:
    """Dry-run ``root`` on zeros of ``input_size`` (N, C, H, W) and record its dataflow."""
    tracer = _Tracer(root)
    handles = []
    pending: dict = {}

    def pre(mod, args):
        tracer.stack.append((tracer.names.get(id(mod), "?"), mod))
        flat, _ = tree_flatten(args)
        pending[id(mod)] = tuple(tuple(t.shape) for t in flat if isinstance(t, torch.Tensor))
        for t in flat:
            n = tracer.node(t)
            if n is not None:
                tracer.g.consumers_of_module.setdefault(tracer.stack[-1][0], n)
                break

    def post(mod, args, out):
        name = tracer.stack.pop()[0]
        if isinstance(out, torch.Tensor) and name not in tracer.g.io_shapes:
            tracer.g.io_shapes[name] = (pending.get(id(mod), ()), tuple(out.shape))
        n = tracer.node(out) if isinstance(out, torch.Tensor) else None
        if n is not None:
            tracer.g.producer[n] = name   # outer modules finish later and overwrite: the outermost wins

    for m in root.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    patched = _patched_forwards(tracer, root)
    for m, fwd in patched:
        m.forward = fwd
    x = torch.zeros(*input_size)
    try:
        with torch.no_grad(), tracer:
            tracer.new_node(x, "input", [])
            out = root(x)
    finally:
        for h in handles:
            h.remove()
        for m, _ in patched:
            del m.forward
    flat, _ = tree_flatten(out)
    outs = [tracer.node(t) for t in flat if isinstance(t, torch.Tensor)]
    if not outs or outs[0] is None:
        raise UnsupportedModuleError("The module's output is not a tensor computed from its input.")
    tracer.g.output = outs[0]
    return tracer.g


@dataclass
class Roles:
    """Per conv index: "main", "projection" (side branch of a merge), "gate" (broadcast multiplier branch),
    "classifier" (after the global pool) or "unused"; ``pooled`` the main-path node entering the global pool."""

    role: list
    pool_input: int | None


def main_path(g: Graph) -> Roles:
    n = len(g.kind)
    longest = [0] * n
    pooled = [False] * n
    pool_input = None
    for v in range(n):
        ins = g.inputs[v]
        if not ins:
            continue
        full = _full_inputs(g, v)
        longest[v] = max(longest[i] for i in full) + (g.kind[v] == "conv")
        was_pooled = all(pooled[i] for i in full)
        reduces = g.kind[v] != "conv" and any(p in g.kind[v] for p in _POOL) and g.spatial[v] == 1 and any(
            g.spatial[i] > 1 for i in full)
        pooled[v] = was_pooled or reduces
    role = ["unused"] * len(g.convs)
    seen = set()
    stack = [g.output]
    on_main = set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        on_main.add(v)
        ins = g.inputs[v]
        if not ins:
            continue
        if g.kind[v] == "conv":
            role[g.conv_of_node[v]] = "classifier" if pooled[ins[0]] else "main"
            stack.append(ins[0])
            continue
        full = _full_inputs(g, v)
        if g.kind[v] == "choice":
            stack.extend(full)
            continue
        best = max(longest[i] for i in full)
        stack.extend(i for i in full if longest[i] == best)
    for v in range(n):  # the main-path node entering the global pool
        if v in on_main and not pooled[v] and any(pooled[w] for w in _users(g, v) if w in on_main):
            pool_input = v if pool_input is None or v > pool_input else pool_input
    for idx, c in enumerate(g.convs):
        if role[idx] == "unused":
            role[idx] = "gate" if _feeds_gate(g, c.dst, on_main) else "projection"
    return Roles(role, pool_input)


def _full_inputs(g: Graph, v: int) -> list[int]:
    """Inputs of ``v`` that are not broadcast into it (a gate's branch is broadcast: fewer elements)."""
    ins = [i for i in g.inputs[v] if i is not None]
    if g.kind[v] in ("choice",):
        return ins
    top = max(g.numel[i] for i in ins)
    return [i for i in ins if g.numel[i] == top] if any(m in g.kind[v] for m in ("mul", "div")) else ins


_users_cache: dict = {}


def _users(g: Graph, v: int) -> list[int]:
    key = id(g)
    if key not in _users_cache:
        users: dict[int, list[int]] = {}
        for w, ins in g.inputs.items():
            for i in ins:
                users.setdefault(i, []).append(w)
        _users_cache.clear()
        _users_cache[key] = users
    return _users_cache[key].get(v, [])


def _feeds_gate(g: Graph, v: int, on_main: set) -> bool:
    """Whether the side branch from ``v`` joins the main path as the broadcast operand of a multiplication
    (a gate, e.g. squeeze-and-excitation) rather than through an addition or concatenation (a projection)."""
    stack, seen = [v], set()
    while stack:
        u = stack.pop()
        if u in seen:
            continue
        seen.add(u)
        for w in _users(g, u):
            if any(m in g.kind[w] for m in ("mul", "div")) and u not in _full_inputs(g, w):
                return True
            if w not in on_main:
                stack.append(w)
    return False
