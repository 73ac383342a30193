"""Read an NNI ModelSpace built from convolutions into a description DeepMAD's program can be evaluated on.

``read_space(space, input_size)`` runs NNI's shape inference (``nni.nas.profiler.pytorch``) once and one
dataflow dry run (:mod:`deepmad_nni.nas.trace`), never freezing a candidate.  The result,
:class:`SpaceDescription`, lists every conv with its in/out channels, kernel, groups and output size as
expressions of the sample, its activity condition (Repeat depth, LayerChoice candidate) and its role (main
path, residual projection, gate such as SE, classifier); DeepMAD stages (a new stage at the block holding
each stride-2 main conv after the first layer); and FLOPs / params as sums of per-module NNI formula terms,
FLOPs counted as MACs of convs and linear layers (no BatchNorm, activation or bias terms) and params as
``sum(p.numel())`` (the core's conventions).  ``description.evaluate(sample)`` gives entropy, rho, Q,
objective, FLOPs and params as a core :class:`~deepmad_nni.core.score.Score`, memoised per label subset;
``description.factor_tables()`` gives the same sums as tables over label subsets (the solver's input).
NNI expressions are evaluated with every shared sub-expression memoised (NNI's own ``evaluate`` walks them
as trees, which on MobileNetV3Space's nested width roundings costs seconds).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from deepmad_nni.core.score import CONVENTIONS, Score, depth_penalty

from .space_program import program_weights
from .trace import UnsupportedModuleError, main_path, trace

__all__ = ["ConvLayer", "FactorTable", "SpaceDescription", "UnsupportedModuleError", "read_space"]


class _ExpressionMemo:
    """Values of NNI symbolic (sub-)expressions, each computed once per values of its own labels.

    NNI's ``evaluate`` walks an expression as a tree, so a sub-expression shared by many nodes (a rounded
    width inside every later width) is recomputed at each use; here every node of the DAG is memoised by its
    identity and the values of the labels below it (the memo holds the nodes, so identities stay unique)."""

    def __init__(self):
        from nni.mutable.symbol import Symbol, SymbolicExpression
        self.symbol, self.expression = Symbol, SymbolicExpression
        self.labels: dict[int, tuple] = {}
        self.values: dict[tuple, object] = {}
        self.nodes: list = []

    def labels_of(self, expr) -> tuple:
        labels = self.labels.get(id(expr))
        if labels is None:
            if isinstance(expr, self.symbol):
                labels = (expr.label,)
            else:
                labels = tuple(sorted({lab for a in expr.arguments if isinstance(a, self.expression)
                                       for lab in self.labels_of(a)}))
            self.labels[id(expr)] = labels
            self.nodes.append(expr)
        return labels

    def value(self, expr, sample: dict):
        if isinstance(expr, self.symbol):
            return sample[expr.label]
        labels = self.labels.get(id(expr)) or self.labels_of(expr)
        key = (id(expr),) + tuple(sample[lab] for lab in labels)
        v = self.values.get(key, self)
        if v is self:
            v = self.values[key] = expr.function(*[self.value(a, sample) if isinstance(a, self.expression) else a
                                                   for a in expr.arguments])
        return v


class Term:
    """An int/float or NNI expression, evaluated on a sample and memoised per values of its own labels."""

    __slots__ = ("expr", "labels", "cache", "const", "memo")

    def __init__(self, expr, memo: _ExpressionMemo | None = None):
        from nni.mutable import Mutable
        self.expr = expr
        if isinstance(expr, Mutable):
            self.labels = tuple(sorted(expr.simplify()))
            self.const = None
        else:
            self.labels, self.const = (), expr
        self.cache: dict = {}
        self.memo = memo            # shared by the Terms of one reading (a private one is made when needed)

    def __call__(self, sample: dict):
        if self.const is not None:
            return self.const
        key = tuple(sample[label] for label in self.labels)
        v = self.cache.get(key)
        if v is None:
            if self.memo is None:
                self.memo = _ExpressionMemo()
            # no freeze() validation: the labels come from the space, the values from its lists
            v = self.memo.value(self.expr, sample) if isinstance(self.expr, self.memo.expression) \
                else self.expr.freeze(sample)
            self.cache[key] = v
        return v

    def table(self, mutables, labels=None) -> np.ndarray:
        """Values over every combination of ``labels`` (sorted, a superset of this term's; default its own):
        one axis per label, in order, of length ``len(mutables[label].values)`` (size 1 for labels the term
        does not read, so the table broadcasts)."""
        return _grid(self, self.labels, mutables, labels)


def _grid(fn, own, mutables, labels=None, dtype=float) -> np.ndarray:
    """``fn(sample)`` over the combinations of the sorted labels ``own``, shaped to broadcast over ``labels``."""
    values = [mutables[lab].values for lab in own]
    flat = [fn(dict(zip(own, combo))) for combo in itertools.product(*values)]
    out = np.array(flat, dtype=dtype).reshape([len(v) for v in values])
    if labels is not None:
        out = out.reshape([len(mutables[lab].values) if lab in own else 1 for lab in labels])
    return out


@dataclass
class Condition:
    """``value(sample) >= threshold`` (Repeat depth) or ``value(sample) == threshold`` (LayerChoice)."""

    value: Term
    op: str
    threshold: object

    def __call__(self, sample) -> bool:
        v = self.value(sample)
        return v >= self.threshold if self.op == ">=" else v == self.threshold

    def table(self, mutables, labels=None) -> np.ndarray:
        """Truth over the combinations of ``labels`` (see :meth:`Term.table`)."""
        return _grid(self, self.value.labels, mutables, labels, dtype=bool)

    def __repr__(self):
        return f"{'/'.join(self.value.labels) or self.value.const} {self.op} {self.threshold!r}"


@dataclass
class ConvLayer:
    """One conv of the space.  ``stage`` is the DeepMAD stage (main-path layers; -1 otherwise)."""

    name: str
    c_in: Term
    c_out: Term
    kernel: Term
    groups: Term
    stride: int
    out_hw: Term       # H * W of the output
    role: str          # main | projection | gate | classifier
    stage: int
    conditions: tuple

    def active(self, sample) -> bool:
        return all(c(sample) for c in self.conditions)

    def log_width(self, sample) -> float:
        return math.log(self.c_in(sample) * self.kernel(sample) ** 2 / self.groups(sample))


@dataclass
class CostTerm:
    flops: Term
    params: Term
    conditions: tuple
    name: str


def _last_active(entries):
    """The stage-end width read from (conditions, Term) pairs, first active wins: the first unconditional
    entry's Term itself when there is one at the head (later entries are then never read)."""
    for i, (conds, _) in enumerate(entries):
        if not conds:
            return entries[0][1] if i == 0 else _LastActive(entries[:i + 1])
    return _LastActive(entries)


class _LastActive:
    """The value of the first active entry of (conditions, Term) pairs (e.g. the width after the last
    active main conv of a stage whose blocks may be inactive)."""

    def __init__(self, entries):
        self.entries = entries
        self.labels = tuple(sorted({lab for conds, t in entries for lab in t.labels} |
                                   {lab for conds, _ in entries for c in conds for lab in c.value.labels}))

    def __call__(self, sample):
        for conds, t in self.entries:
            if all(c(sample) for c in conds):
                return t(sample)
        raise ValueError("No main conv of the last stage is active for this sample.")

    def table(self, mutables, labels=None) -> np.ndarray:
        return _grid(self, self.labels, mutables, labels)


@dataclass(frozen=True)
class FactorTable:
    """One label factor's totals over every combination of its ``labels`` (axis k runs over
    ``mutables[labels[k]].values``): FLOPs, params, and per stage (last axis) the sum of log w and the number
    of its active main-path convs."""

    labels: tuple
    flops: np.ndarray
    params: np.ndarray
    log_width: np.ndarray
    layers: np.ndarray


class _Factor:
    """Layers and cost terms sharing one label subset; their totals memoised per values of those labels."""

    def __init__(self, labels, items, num_stages):
        self.labels, self.items, self.m = labels, items, num_stages
        self.cache: dict = {}

    def __call__(self, sample):
        key = tuple(sample[lab] for lab in self.labels)
        v = self.cache.get(key)
        if v is None:
            v = self.cache[key] = self._compute(sample)
        return v

    def _compute(self, sample):
        flops = params = 0.0
        sums, counts, used = [0.0] * self.m, [0] * self.m, set()
        any_main = False
        for item in self.items:
            if not all(c(sample) for c in item.conditions):
                continue
            for c in item.conditions:
                used.update(c.value.labels)
            if isinstance(item, CostTerm):
                flops += item.flops(sample)
                params += item.params(sample)
                used.update(item.flops.labels, item.params.labels)
            else:
                for t in (item.c_in, item.c_out, item.kernel, item.groups, item.out_hw):
                    used.update(t.labels)
                if item.role == "main":
                    sums[item.stage] += item.log_width(sample)
                    counts[item.stage] += 1
                    any_main = True
        return flops, params, (tuple(sums) if any_main else ()), tuple(counts), frozenset(used)

    def table(self, mutables) -> FactorTable:
        """:meth:`_compute` over every combination of the labels, item by item in the same order (so each entry
        is the same floating-point sum)."""
        shape = tuple(len(mutables[lab].values) for lab in self.labels)
        flops, params = np.zeros(shape), np.zeros(shape)
        log_width, layers = np.zeros(shape + (self.m,)), np.zeros(shape + (self.m,))
        for item in self.items:
            active = np.ones(shape, dtype=bool)
            for c in item.conditions:
                active = active & c.table(mutables, self.labels)
            if isinstance(item, CostTerm):
                flops = flops + np.where(active, item.flops.table(mutables, self.labels), 0.0)
                params = params + np.where(active, item.params.table(mutables, self.labels), 0.0)
            elif item.role == "main":
                own = tuple(sorted(set(item.c_in.labels) | set(item.kernel.labels) | set(item.groups.labels)))
                lw = _grid(item.log_width, own, mutables, self.labels)
                log_width[..., item.stage] += np.where(active, lw, 0.0)
                layers[..., item.stage] += active
        return FactorTable(self.labels, flops, params, log_width, layers)


class SpaceDescription:
    """What DeepMAD needs of a space, as functions of the sample (see module docstring)."""

    def __init__(self, mutables, layers, stage_ends, depth_terms, costs, flops_expression, params_expression,
                 input_size):
        self.mutables = mutables              # label -> Categorical
        self.layers = layers                  # ConvLayer, in execution order
        self.stage_ends = stage_ends          # per stage: (c Term, H*W Term, conditions-free)
        self.depth_terms = depth_terms        # (stage, depth Term, conditions, kind): per main-path Repeat
        #   ("repeat"; Q over each Repeat's depth under "official"), else per block ("block"; Q over per-stage
        #   block counts under both conventions)
        self.costs = costs                    # CostTerm per NNI formula module
        self.flops_expression = flops_expression
        self.params_expression = params_expression
        self.input_size = tuple(input_size)
        self.main = [layer for layer in layers if layer.role == "main"]

    @property
    def num_stages(self) -> int:
        return len(self.stage_ends)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.mutables)

    def size(self) -> int:
        return int(np.prod([len(m.values) for m in self.mutables.values()], dtype=float))

    def table(self, sample: dict | None = None) -> list[dict]:
        """Per conv layer: name, role, stage, and (for a sample) c_in, c_out, kernel, groups, out_hw, active."""
        rows = []
        for layer in self.layers:
            row = {"name": layer.name, "role": layer.role, "stage": layer.stage, "stride": layer.stride,
                   "condition": " and ".join(map(repr, layer.conditions)) or "always"}
            if sample is not None:
                row.update(c_in=layer.c_in(sample), c_out=layer.c_out(sample), kernel=layer.kernel(sample),
                           groups=layer.groups(sample), out_hw=layer.out_hw(sample), active=layer.active(sample))
            rows.append(row)
        return rows

    def _build_factors(self):
        """Group layers and cost terms by the labels they depend on; each group is memoised per label values."""
        groups: dict[tuple, list] = {}
        for layer in self.layers:
            terms = [layer.c_in, layer.c_out, layer.kernel, layer.groups, layer.out_hw]
            key = tuple(sorted({lab for t in terms for lab in t.labels} |
                               {lab for c in layer.conditions for lab in c.value.labels}))
            groups.setdefault(key, []).append(layer)
        for cost in self.costs:
            key = tuple(sorted(set(cost.flops.labels) | set(cost.params.labels) |
                               {lab for c in cost.conditions for lab in c.value.labels}))
            groups.setdefault(key, []).append(cost)
        self._factors = [_Factor(key, items, self.num_stages) for key, items in groups.items()]
        self._totals_cache: dict = {}
        self._tables = None

    def factor_tables(self) -> list[FactorTable]:
        """The totals of :meth:`cost` and :meth:`evaluate` as a sum of label factors: a sample's FLOPs, params,
        per-stage sums of log w and layer counts are the sums, in this order, of each table's entry at the
        sample's values (the same floating-point sums as :meth:`evaluate`)."""
        if getattr(self, "_factors", None) is None:
            self._build_factors()
        if self._tables is None:
            self._tables = [f.table(self.mutables) for f in self._factors]
        return self._tables

    def _totals(self, sample: dict):
        """(flops, params, per-stage sum of log w, per-stage layer count, labels in use) of ``sample``."""
        if getattr(self, "_factors", None) is None:
            self._build_factors()
        key = tuple(sample.get(k) for k in self.mutables)
        hit = self._totals_cache.get(key)
        if hit is not None:
            return hit
        m = self.num_stages
        flops = params = 0.0
        sums, counts, used = [0.0] * m, [0] * m, set()
        for f in self._factors:
            fl, pa, su, co, us = f(sample)
            flops += fl
            params += pa
            if su:
                for i in range(m):
                    sums[i] += su[i]
                    counts[i] += co[i]
            used |= us
        if len(self._totals_cache) > 200000:
            self._totals_cache.clear()
        out = self._totals_cache[key] = (flops, params, sums, counts, used)
        return out

    def active_labels(self, sample: dict) -> set[str]:
        """Labels the network of ``sample`` depends on (the others sit in inactive blocks or candidates)."""
        return self._totals(sample)[4] & set(self.mutables)

    def canonical(self, sample: dict) -> dict:
        """``sample`` with every inactive label set to its first value (same network, one representative)."""
        full = {k: sample.get(k, m.values[0]) for k, m in self.mutables.items()}
        totals = self._totals(full)
        canon = {k: (v if k in totals[4] else self.mutables[k].values[0]) for k, v in full.items()}
        self._totals_cache[tuple(canon.values())] = totals   # same network, same totals
        return canon

    def signature(self, sample: dict) -> tuple:
        """The network of ``sample``, as data: every active conv's (name, c_in, c_out, kernel, groups) and every
        active module's (name, FLOPs, params).  Samples with equal signatures build the same network (e.g. two
        width multipliers rounded to the same width)."""
        convs = tuple((lay.name, lay.c_in(sample), lay.c_out(sample), lay.kernel(sample), lay.groups(sample))
                      for lay in self.layers if lay.active(sample))
        costs = tuple((c.name, c.flops(sample), c.params(sample)) for c in self.costs
                      if all(cond(sample) for cond in c.conditions))
        return convs + costs

    def cost(self, sample: dict) -> tuple[float, float]:
        flops, params = self._totals(sample)[:2]
        return flops, params

    def evaluate(self, sample: dict, *, alpha=None, beta: float = 10.0, convention: str = "official"
                 ) -> Score:
        """DeepMAD's figures of ``sample`` under the core's conventions (:func:`deepmad_nni.core.score`)."""
        alpha, beta = program_weights(self.num_stages, alpha, beta, convention)
        s = CONVENTIONS[convention]
        flops, params, sums, counts, _ = self._totals(sample)
        stage_h, rhos, cum, n = [], [], 0.0, 0
        for i, (c, hw) in enumerate(self.stage_ends):
            cum += sums[i]
            n += counts[i]
            stage_h.append(s * math.log(hw(sample) * c(sample)) * cum)
            if n:
                rhos.append(n / math.exp(cum / n))
        rho = (max(rhos) if convention == "official" else rhos[-1]) if rhos else float("inf")
        entropy = float(np.dot(alpha, stage_h))
        depths = self._depths(sample, convention)
        q = depth_penalty(depths)
        return Score(entropy, tuple(stage_h), rho, q, entropy - beta * q, flops, params, n, depths)

    def _depths(self, sample, convention) -> tuple:
        active = [(st, d(sample)) for st, d, conds, _ in self.depth_terms if all(c(sample) for c in conds)]
        if convention == "official" and self.depth_terms and self.depth_terms[0][3] == "repeat":
            return tuple(d for _, d in active)
        per_stage: dict[int, int] = {}
        for st, d in active:
            per_stage[st] = per_stage.get(st, 0) + d
        return tuple(per_stage[k] for k in sorted(per_stage))

    def __repr__(self):
        roles = {}
        for layer in self.layers:
            roles[layer.role] = roles.get(layer.role, 0) + 1
        return (f"SpaceDescription({len(self.mutables)} labels, {len(self.layers)} convs {roles}, "
                f"{self.num_stages} stages, input {self.input_size})")


def _args(module, name):
    from nni.nas.nn.pytorch import ParametrizedModule
    if isinstance(module, ParametrizedModule) and name in module.args:
        return module.args[name]
    return getattr(module, name)


def _first(v):
    return v[0] if isinstance(v, (tuple, list)) else v


def _conditions(scope, containers, term) -> tuple:
    conds = []
    for kind, name, _label, key in scope:
        m = containers[name]
        if kind == "choice":
            conds.append(Condition(term(m.choice), "==", key))
        else:
            from nni.mutable import Mutable
            if isinstance(m.depth_choice, Mutable):
                conds.append(Condition(term(m.depth_choice), ">=", key + 1))
    return tuple(conds)


def read_space(space, input_size=None) -> SpaceDescription:
    """Describe ``space`` (an NNI ModelSpace of 2-d convolutions) for inputs of ``input_size`` (N, C, H, W).

    ``input_size`` defaults to (1, 3, r, r) with r the space's ``config.resolution`` when it has one, else 224.
    Raises :class:`UnsupportedModuleError` naming the module (and label) the reader cannot reason about.
    """
    import torch
    from nni.mutable import Categorical
    from nni.nas.nn.pytorch import LayerChoice, Repeat
    from nni.nas.profiler.pytorch.flops import FlopsParamsCounterConfig, count_flops_params, find_flops_formula
    from nni.nas.profiler.pytorch.utils import ShapeTensor, submodule_input_output_shapes

    if input_size is None:
        r = getattr(getattr(space, "config", None), "resolution", 224)
        input_size = (1, 3, r, r)
    input_size = tuple(int(v) for v in input_size)
    if len(input_size) != 4 or min(input_size) < 1:
        raise ValueError(f"input_size must be (N, C, H, W) with positive entries, but got {input_size}.")
    memo = _ExpressionMemo()

    def term(expr) -> Term:
        return Term(expr, memo)

    mutables = {}
    for label, m in (space.simplify().items() if hasattr(space, "simplify") else ()):
        if isinstance(m, Categorical):
            mutables[label] = m
        elif type(m).__name__ != "MutableAnnotation" and not label.startswith("_"):
            raise UnsupportedModuleError(f"Label {label!r} is a {type(m).__name__}; the reader supports categorical "
                                         "choices (nni.choice, LayerChoice, Repeat) only.")
    graph = trace(space, input_size)
    roles = main_path(graph)
    static = all(_same_padding(call) for call in graph.convs)
    if static:  # sizes do not depend on the sample: the dry run's shapes serve NNI's per-module formulas
        from nni.nas.profiler.pytorch.utils import MutableShape
        shapes = {name: (tuple(MutableShape(*s) for s in ins), MutableShape(*out))
                  for name, (ins, out) in graph.io_shapes.items()}
    else:
        try:
            shapes = submodule_input_output_shapes(space, ShapeTensor(torch.zeros(*input_size), True))
        except Exception as err:  # NNI's shape inference names no module; say which part failed
            raise UnsupportedModuleError(f"NNI shape inference failed on this space: {err}") from err
    containers = {n: m for n, m in space.named_modules() if isinstance(m, (LayerChoice, Repeat))}
    modules = dict(space.named_modules())

    # -- conv layers and DeepMAD stages --------------------------------------------------------------
    main_counts = _main_conv_counts(graph, roles, modules)
    main_idx = [i for i, r in enumerate(roles.role) if r == "main"]
    boundaries, starts = [], []   # (block name, input node); index of the boundary's first main conv
    boundary_nodes: dict[int, int] = {}
    for idx in main_idx[1:]:
        call = graph.convs[idx]
        if _first(_stride(call)) > 1:
            block = _block_of(call.name, modules, main_counts)
            node = graph.consumers_of_module.get(block, call.src)
            inside = [j for j in main_idx if j == idx or graph.convs[j].name.startswith(block + ".")]
            if node not in boundary_nodes:
                boundary_nodes[node] = len(boundaries)
                boundaries.append((block, node))
                starts.append(min(inside))
            else:
                k = boundary_nodes[node]
                starts[k] = min(starts[k], min(inside))
    layers = []
    for idx, call in enumerate(graph.convs):
        mod, role = call.module, roles.role[idx]
        stage = sum(1 for st in starts if st <= idx) if role == "main" else -1
        if call.name not in shapes:
            raise UnsupportedModuleError(f"NNI shape inference gave no shape for conv {call.name!r}.")
        out_shape = shapes[call.name][1]
        out_shape = out_shape[0] if isinstance(out_shape, tuple) else out_shape
        layers.append(ConvLayer(
            call.name, term(_args(mod, "in_channels")), term(_args(mod, "out_channels")),
            term(_first(_args(mod, "kernel_size"))), term(_args(mod, "groups")), _first(_stride(call)),
            term(graph.spatial[call.dst] if static else out_shape[-1] * out_shape[-2]), role, stage,
            _conditions(call.scope, containers, term)))
    if not any(layer.role == "main" for layer in layers):
        raise UnsupportedModuleError("The space has no conv on its main path.")
    _check_stage_order(layers)

    # -- stage ends: what the next stage's first block reads; for the last stage, what the global pool reads --
    stage_ends = []
    last_stage = [lay for lay in layers if lay.role == "main" and lay.stage == len(boundaries)]
    if static:  # sizes from the dry run; widths from the convs that read / write the stage's output
        for (_, node), start in zip(boundaries, starts):
            stage_ends.append((layers[start].c_in, term(graph.spatial[node])))
        node = roles.pool_input if roles.pool_input is not None else graph.convs[layers.index(last_stage[-1])].dst
        stage_ends.append((_last_active([(lay.conditions, lay.c_out) for lay in reversed(last_stage)]),
                           term(graph.spatial[node])))
    else:  # NNI's symbolic shapes of the blocks' inputs and of the pooled tensor's producer
        for block, _ in boundaries:
            shape = _shape_in(shapes, block)
            stage_ends.append((term(shape[1]), term(shape[2] * shape[3])))
        name = graph.producer.get(roles.pool_input if roles.pool_input is not None else graph.output)
        if name is not None and name in shapes:
            shape = shapes[name][1]
            shape = shape[0] if isinstance(shape, tuple) else shape
        else:
            shape = shapes[last_stage[-1].name][1]
        stage_ends.append((term(shape[1]), term(shape[2] * shape[3])))

    # -- depths of the Repeats on the main path ----------------------------------------------------------
    depth_terms = []
    for name, m in containers.items():
        if isinstance(m, Repeat):
            inner = [lay for lay in layers if lay.role == "main" and lay.name.startswith(name + ".")]
            if inner:
                scope = next(c.scope for c in graph.convs if c.name == inner[0].name)
                outer = _conditions([s for s in scope if name.startswith(s[1] + ".")], containers, term)
                depth_terms.append((inner[0].stage, term(m.depth_choice), outer, "repeat"))

    # -- without Repeats: blocks (innermost non-container modules with >= 2 main convs) per stage ------------
    if not depth_terms:
        blocks: dict[str, ConvLayer] = {}
        for lay in layers:
            if lay.role == "main":
                block = _block_of(lay.name, modules, main_counts)
                if block != lay.name and block not in blocks:
                    blocks[block] = lay
        for block, lay in blocks.items():
            depth_terms.append((lay.stage, term(1), lay.conditions, "block"))

    # -- FLOPs and params as per-module NNI terms ----------------------------------------------------------
    cfg_f = FlopsParamsCounterConfig(count_bias=False, count_normalization=False, count_activation=False)
    cfg_p = FlopsParamsCounterConfig()
    costs = []
    conv_hw = {call.name: graph.spatial[call.dst] for call in graph.convs}

    def walk(name, module, conds):
        if isinstance(module, LayerChoice):
            for key, child in module.named_children():
                walk(f"{name}.{key}", child, conds + (Condition(term(module.choice), "==", key),))
        elif isinstance(module, Repeat):
            from nni.mutable import Mutable
            for i, block in enumerate(module.blocks):
                c = (Condition(term(module.depth_choice), ">=", i + 1),) if isinstance(module.depth_choice, Mutable) \
                    else ()
                walk(f"{name}.blocks.{i}", block, conds + c)
        elif find_flops_formula(module) is not None:
            if name not in shapes:
                return  # never run by the forward (e.g. a module kept but unused)
            p = count_flops_params(name, module, shapes, cfg_p)
            if static and name in conv_hw:  # MACs of a conv at its (sample-independent) output size
                c_in, c_out, g = (_args(module, k) for k in ("in_channels", "out_channels", "groups"))
                kh, kw = _pair(_args(module, "kernel_size"))
                flops = c_out * conv_hw[name] * (kh * kw * c_in // g)
            else:
                flops = count_flops_params(name, module, shapes, cfg_f).flops
            costs.append(CostTerm(term(flops), term(p.params), conds, name))
        else:
            if not list(module.children()) and any(True for _ in module.parameters(recurse=False)):
                raise UnsupportedModuleError(f"Module {name!r} ({type(module).__name__}) has parameters but no "
                                             "FLOPs formula; the reader cannot count it.")
            for key, child in module.named_children():
                walk(f"{name}.{key}" if name else key, child, conds)

    walk("", space, ())
    flops_expr = sum(c.flops.expr for c in costs)
    params_expr = sum(c.params.expr for c in costs)
    return SpaceDescription(mutables, layers, stage_ends, depth_terms, costs, flops_expr, params_expr, input_size)


def _pair(v):
    return (v[0], v[1]) if isinstance(v, (tuple, list)) else (v, v)


def _same_padding(call) -> bool:
    """Whether the conv's output size is ceil(input / stride) for every kernel it can take: odd kernels with
    padding (k - 1) // 2, the kernel and padding expressions of at most one label."""
    from nni.mutable import Mutable
    k, p = _pair(_args(call.module, "kernel_size")), _pair(_args(call.module, "padding"))
    if not all(isinstance(v, (int, Mutable)) for v in k + p):
        return False
    labels = set()
    for v in k + p:
        if isinstance(v, Mutable):
            labels |= set(v.simplify())
    if len(labels) > 1:
        return False
    if labels:
        mutable = next(iter(next(v for v in k + p if isinstance(v, Mutable)).simplify().values()))
        samples = [{mutable.label: value} for value in mutable.values]
    else:
        samples = [{}]
    for smp in samples:
        kk = [v.freeze(smp) if isinstance(v, Mutable) else v for v in k]
        pp = [v.freeze(smp) if isinstance(v, Mutable) else v for v in p]
        if any(a % 2 == 0 or b != (a - 1) // 2 for a, b in zip(kk, pp)):
            return False
    return True


def _stride(call):
    stride = _args(call.module, "stride")
    if not all(isinstance(v, int) for v in (stride if isinstance(stride, tuple) else (stride,))):
        raise UnsupportedModuleError(f"Conv {call.name!r} has a searchable stride; stages must come from fixed "
                                     "strides.")
    return stride


def _shape_in(shapes, name):
    shape = shapes[name][0]
    while isinstance(shape, (tuple, list)):
        shape = shape[0]
    return shape


def _main_conv_counts(graph, roles, modules) -> dict[str, int]:
    counts: dict[str, int] = {}
    for idx, call in enumerate(graph.convs):
        if roles.role[idx] != "main":
            continue
        parts = call.name.split(".")
        for j in range(1, len(parts)):
            prefix = ".".join(parts[:j])
            counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def _block_of(conv_name: str, modules, counts) -> str:
    """The block a downsampling conv belongs to: the innermost enclosing module holding at least two main
    convs that is not a plain container (Sequential, ModuleList, Repeat, LayerChoice, the space); else the conv."""
    from nni.nas.nn.pytorch import LayerChoice, Repeat
    from torch import nn

    parts = conv_name.split(".")
    for j in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:j])
        m = modules[prefix]
        if type(m) in (nn.Sequential, nn.ModuleList) or isinstance(m, (LayerChoice, Repeat)):
            continue
        if counts.get(prefix, 0) >= 2:
            return prefix
    return conv_name


def _check_stage_order(layers):
    last = 0
    for layer in layers:
        if layer.role == "main":
            if layer.stage < last:
                raise UnsupportedModuleError(f"Conv {layer.name!r} runs after a later stage started; the reader "
                                             "needs a single chain of stages.")
            last = layer.stage
