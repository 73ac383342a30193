"""``MathNAS``: an NNI 3.0 strategy that estimates per-choice contributions, then solves MathNAS's ILP.

MathNAS (Wang, Ke, Liang, Zhang, NeurIPS 2023) models a network's metric as the sum of the contributions
of its blocks, measures those contributions with a few evaluations, and designs by integer programming::

    strategy = MathNAS(flops=60e6, params=1.5e6, input_size=(1, 3, 32, 32))   # instead of Random()
    NasExperiment(model_space, evaluator, strategy, config).run()             # config.max_trial_number = N

Any space whose labels are categorical works: ``nni.choice``, ``LayerChoice``, ``Repeat`` depths, and the
``InputChoice`` / ``CategoricalMultiple`` labels of NNI's cell spaces (DARTS, ENAS, NASNet), each read as one
binary block per input with the cardinality ``n_chosen`` as a constraint (:mod:`deepmad_nni.core.block_estimate`).

**1. Estimate** (``estimate``; the evaluations go through NNI's engine and count in ``max_trial_number``):

* ``"swap"`` (default): the MathNAS scheme, a base network and each single swap from it,
  ``1 + sum_i (n_i - 1)`` evaluations (17 on NAS-Bench-Macro's 8 x 3 choices).  Default because it is the
  paper's, it needs the fewest evaluations any estimate of the model can need, and its contributions are
  exact differences of measured networks (no fit noise).
* ``"lstsq"``: a least-squares fit on distinct seeded random networks (at least as many as the model's
  parameters, drawn to give the design matrix full rank): contributions averaged over the space rather than
  measured at one base.

``estimate_evaluations`` sets how many (None: the scheme's minimum; more than the minimum adds seeded random
networks to the swap design, all fitted by least squares).  ``base``: ``"random"`` (default: seeded, drawn
within the budgets), ``"cheapest"`` (the design of least cost by the linear cost model: every single swap
from it is within the budget wherever that choice can be part of a design within the budget at all, but the
estimate networks are then tiny and their contributions measured far from the designs the budget allows;
on NAS-Bench-Macro its regret was worse, see docs/mathnas.md), ``"first"`` (every label's first value) or a
sample dict.
Only networks within the budgets are evaluated: a swap over a budget is repaired (the other blocks move to
their cheapest choices, the largest saving first, until the profilers admit it; the fit is then least
squares over these rows, still exact for an additive metric when they reach full rank) or, if no repair
fits, skipped and its choice not proposed; a failed evaluation (no metric) leaves its choice unidentified
and not proposed.  Without the repair, a random base near the budget left 5-9 of 17 swaps unevaluated on
NAS-Bench-Macro at 45M MACs and the search stuck at 1.36 pp regret (0.00 with it, docs/mathnas.md).

**2. Costs** (``flops`` in MACs by ``FlopsProfiler(count_normalization=False, count_activation=False,
count_bias=False)``, ``params`` by ``NumParamsProfiler``, at ``input_size``): FLOPs and params are not
additive over choices in general (a width choice changes the next layer's cost).  Per-choice costs are
measured as deltas from the base (a single swap each, profiled, nothing trained), the ILP is solved with that
linear cost model, and every design it returns is profiled exactly: one over a budget gets an integer
no-good cut and the ILP is re-solved (**cut and re-solve**), so every submitted design is within the budgets
by the profilers.  Designs the linear model over-estimates beyond a budget are not proposed (none where
costs are additive, as on NAS-Bench-Macro).  Choices whose linear lower bound exceeds a budget are pruned.

**Latency** (``latency`` in ms) is one more such cost, with the same swap-delta model, exact check and cut and
re-solve; its exact measure of a design is

* with ``latency_table`` (a ``LatencyTable`` or its file, ``deepmad-nni latency profile``): the table's
  prediction ``predicted_latency(architecture_of_sample(sample), table)`` on a space that maps to a core family
  (the package's ``search_spaces``, NAS-Bench-Macro; :func:`deepmad_nni.nas.route.core_mapping`), deterministic;
  a table on any other space is a ValueError;
* without a table (any NNI space: DARTS, SPACH, a user's): the frozen network measured on ``latency_device``
  (``"cpu"`` | ``"cuda"``; needs ``input_size``) with ``latency_threads`` torch threads, each design once
  (:mod:`deepmad_nni.nas.measured_latency`).  Measurements are noisy: the budget is met *as measured at check
  time*, and the run is no longer deterministic.

``latency`` needs a table or a ``latency_device`` (the default ``"cpu"``; None refuses to measure).  A table
alone (no ``latency``) only reports each design's predicted latency.  Every submitted design's latency is in its
:class:`Evaluation` (``latency``), in the summary log line and in :meth:`MathNAS.state_dict`.

**3. Search**: the one-hot ILP (:func:`deepmad_nni.core.block_ilp.best_designs`, HiGHS via
``scipy.optimize.milp``, exact) gives the optimum of the estimated contributions within the budgets, then
the next-best distinct designs (no-good cuts on every design evaluated), one per evaluation until NNI's
budget (``max_trial_number``) is spent.  ``refit=True`` refits the contributions on every evaluation so far
(least squares) before each new design; default False, the paper's fixed estimate.

A budget no design meets raises :class:`MathNASInfeasible` (a ValueError) before anything is evaluated, so
the experiment fails with it; so does a non-categorical label (e.g. ``nni.uniform``) or an
``estimate_evaluations`` below the scheme's minimum.  Deterministic: the same ``seed`` gives the same
designs (unless a measured latency decides a budget).  Samples name all labels (also inactive ones beyond a
Repeat depth); two designs are distinct when their samples differ.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import islice

import numpy as np
from nni.nas.strategy import Strategy

from deepmad_nni.core.block_estimate import (BlockSpace, fit_contributions, free_parameters, random_design,
                                             sampled_designs, swap_designs)
from deepmad_nni.core.block_ilp import OneHotConstraint, best_designs, iter_designs
from deepmad_nni.core.program import positive_number
from deepmad_nni.latency_profile import DEVICES

from .loop import check_int, metric_value

_logger = logging.getLogger(__name__)
ESTIMATES = ("swap", "lstsq")
BASES = ("cheapest", "random", "first")
MAX_CUTS = 10_000
UNITS = {"flops": " MACs", "params": "", "latency": " ms"}


class MathNASInfeasible(ValueError):
    """No design of the space meets the budgets: the message names them and the least cost reached."""


@dataclass(frozen=True)
class _Block:
    label: str
    values: tuple          # the label's values; for an input block: (absent, present) of ``value``
    value: object = None   # the input this binary block stands for (CategoricalMultiple), else None


def read_blocks(model_space) -> tuple[list, BlockSpace]:
    """The categorical labels of an NNI space as blocks (ValueError naming a label that is not categorical)."""
    from nni.mutable import Categorical, CategoricalMultiple, MutableAnnotation
    blocks, groups = [], []
    for label, m in model_space.simplify().items():
        if isinstance(m, MutableAnnotation):
            continue                          # constraints (e.g. ExpressionConstraint) and the like
        if isinstance(m, CategoricalMultiple):
            members = []
            for v in m.values:
                members.append(len(blocks))
                blocks.append(_Block(label, (False, True), v))
            if m.n_chosen is not None:
                groups.append((tuple(members), int(m.n_chosen)))
        elif isinstance(m, Categorical):
            blocks.append(_Block(label, tuple(m.values)))
        else:
            raise ValueError(f"MathNAS needs categorical labels (nni.choice, LayerChoice, Repeat, InputChoice), but "
                             f"label {label!r} is {type(m).__name__}: {m!r}.")
    if not blocks:
        raise ValueError("MathNAS needs a model space with at least one categorical label, but got none.")
    return blocks, BlockSpace(tuple(len(b.values) for b in blocks), tuple(groups))


def sample_of(blocks, design) -> dict:
    sample = {}
    for b, j in zip(blocks, design):
        if b.value is None:
            sample[b.label] = b.values[j]
        else:
            chosen = sample.setdefault(b.label, [])
            if j:
                chosen.append(b.value)
    return sample


def design_of(blocks, sample: dict) -> tuple:
    design = []
    for b in blocks:
        if b.label not in sample:
            raise ValueError(f"base must give every label of the space, but label {b.label!r} is missing.")
        v = sample[b.label]
        if b.value is None:
            if v not in b.values:
                raise ValueError(f"base[{b.label!r}] must be one of {list(b.values)}, but got {v!r}.")
            design.append(b.values.index(v))
        else:
            design.append(int(b.value in list(v)))
    return tuple(design)


@dataclass
class Evaluation:
    """One network MathNAS evaluated: its design, sample, metric and phase ("estimate" or "search")."""

    design: tuple
    sample: dict
    phase: str
    metric: float | None = None
    predicted: float | None = None
    latency: float | None = None   # ms: the table's prediction or the measurement (module docstring)


@dataclass(frozen=True)
class TableLatency:
    """The latency ``table`` predicts for a sample (``.profile(sample)``, ms) through a space's core route, raised
    by the table's calibration margin (``LatencyTable.guarded``, docs/latency.md): the cost the budget is checked on."""

    route: object         # a deepmad_nni.nas.route.CoreRoute
    table: object         # a core LatencyTable

    def profile(self, sample: dict) -> float:
        return float(self.table.guarded(self.route.predicted_latency(sample, self.table)))

    def describe(self) -> str:
        return f"predicted by the latency table ({self.table.describe()})"


class MathNAS(Strategy):
    """See the module docstring.  Keyword-only settings: ``flops`` (MACs) / ``params`` / ``latency`` (ms)
    budgets (optional), ``input_size`` (N, C, H, W; required with flops, params or a measured latency),
    ``latency_table`` (a LatencyTable or its path; None: latency measured), ``latency_device`` (``"cpu"`` |
    ``"cuda"`` | None: where a latency without a table is measured), ``latency_threads`` (torch threads while
    measuring), ``estimate`` (``"swap"`` | ``"lstsq"``), ``estimate_evaluations`` (None: the scheme's minimum),
    ``base`` (``"cheapest"`` | ``"random"`` | ``"first"`` | a sample; None: random), ``refit``, ``seed``,
    ``time_limit`` (seconds per ILP solve; None: none)."""

    def __init__(self, *, flops=None, params=None, input_size=None, latency=None, latency_table=None,
                 latency_device: str | None = "cpu", latency_threads: int = 1, estimate: str = "swap",
                 estimate_evaluations: int | None = None, base=None, refit: bool = False, seed: int = 0,
                 time_limit: float | None = None):
        super().__init__()
        self.flops = positive_number("flops", flops)
        self.params = positive_number("params", params)
        self.latency = positive_number("latency", latency)
        if latency_table is not None:
            from deepmad_nni.core.latency import as_table
            latency_table = as_table(latency_table)
        self.latency_table = latency_table
        if latency_device is not None and latency_device not in DEVICES:
            raise ValueError(f"latency_device must be one of {list(DEVICES)} or None, but got {latency_device!r}.")
        self.latency_device = latency_device
        self.latency_threads = check_int("latency_threads", latency_threads)
        measured = self.latency is not None and latency_table is None
        if measured and latency_device is None:
            raise ValueError("latency needs latency_table (a LatencyTable or a table file from deepmad-nni latency "
                             "profile) or latency_device (where to measure the frozen networks), but got neither.")
        if input_size is not None and (len(tuple(input_size)) != 4 or min(input_size) < 1):
            raise ValueError(f"input_size must be (N, C, H, W) with positive entries, but got {input_size!r}.")
        if input_size is None and (self.flops is not None or self.params is not None or measured):
            raise ValueError("input_size must be (N, C, H, W) when flops, params or latency without a latency_table "
                             "is set (the profilers and the measured networks need an input), but got None.")
        self.input_size = tuple(input_size) if input_size is not None else None
        if latency_table is not None and self.input_size is not None:
            latency_table.check({"batch_size": self.input_size[0]}, source="latency_table")
        if estimate not in ESTIMATES:
            raise ValueError(f"estimate must be one of {list(ESTIMATES)}, but got {estimate!r}.")
        self.estimate = estimate
        self.estimate_evaluations = None if estimate_evaluations is None else check_int(
            "estimate_evaluations", estimate_evaluations)
        if base is None:
            base = "random"
        if not isinstance(base, dict) and base not in BASES:
            raise ValueError(f"base must be one of {list(BASES)} or a sample dict, but got {base!r}.")
        if base == "cheapest" and self.input_size is None:
            raise ValueError("base='cheapest' needs input_size (N, C, H, W) to profile costs, but got None.")
        self.base = base
        if not isinstance(refit, bool):
            raise ValueError(f"refit must be True or False, but got {refit!r}.")
        self.refit = refit
        self.seed = check_int("seed", seed, low=0)
        self.time_limit = positive_number("time_limit", time_limit)
        self.history: list[Evaluation] = []
        self.contributions = None       # the fitted core Contributions
        self.ilp_seconds = 0.0          # time in the ILP solver, all solves together
        self.ilp_calls = 0
        self.cuts = 0                   # designs the profilers found over a budget (cut and re-solved)
        self._restored: list = []

    @property
    def budgets(self) -> dict:
        return {k: v for k, v in (("flops", self.flops), ("params", self.params), ("latency", self.latency))
                if v is not None}

    def extra_repr(self) -> str:
        latency = ""
        if self.latency is not None or self.latency_table is not None:
            latency = (f", latency={self.latency}, latency_table={self.latency_table.describe()!r}"
                       if self.latency_table is not None else
                       f", latency={self.latency}, latency_device={self.latency_device!r}, "
                       f"latency_threads={self.latency_threads}")
        return (f"flops={self.flops}, params={self.params}, input_size={self.input_size}, estimate={self.estimate!r}, "
                f"estimate_evaluations={self.estimate_evaluations}, base={self.base!r}, refit={self.refit}, "
                f"seed={self.seed}{latency}")

    # -- costs ---------------------------------------------------------------------------------------------
    def _profilers(self):
        """name -> an object whose ``profile(sample)`` is the exact cost: NNI's FLOPs / params profilers and
        the latency measure (:meth:`_latency_measure`)."""
        out = {}
        if "flops" in self.budgets or "params" in self.budgets or self.base == "cheapest":
            import torch
            from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler

            from .nni_shapes import quiet_shape_inference, register_missing
            from .route import raw_space
            register_missing()      # NNI's DARTS-style cells need shape formulas NNI 3.0 lacks
            space, x = raw_space(self.model_space), torch.zeros(*self.input_size)
            with quiet_shape_inference():
                if "flops" in self.budgets or self.base == "cheapest":
                    out["flops"] = FlopsProfiler(space, x, count_normalization=False, count_activation=False,
                                                 count_bias=False)
                if "params" in self.budgets or self.base == "cheapest":
                    out["params"] = NumParamsProfiler(space, x)
        if self.latency is not None:
            out["latency"] = self._latency
        return out

    def _latency_measure(self):
        """The exact latency measure of a sample (module docstring): :class:`TableLatency` with a table,
        :class:`~deepmad_nni.nas.measured_latency.MeasuredLatency` for a latency without one, else None."""
        if self.latency_table is not None:
            from .route import core_mapping, raw_space, route_of
            space = raw_space(self.model_space)
            if core_mapping(space) is None:
                raise ValueError(f"latency_table needs a space that maps to a core family (the package's "
                                 f"search_spaces, NAS-Bench-Macro), but got {type(space).__name__}; without a table "
                                 f"MathNAS measures the frozen networks on latency_device.")
            return TableLatency(route_of(space, self.input_size), self.latency_table)
        if self.latency is not None:
            from .measured_latency import MeasuredLatency
            return MeasuredLatency(self.model_space, self.input_size, device=self.latency_device,
                                   threads=self.latency_threads)
        return None

    def latency_of(self, design) -> float | None:
        """The latency (ms) of ``design`` by the exact measure (memoised with its costs); None without one."""
        if self._latency is None:
            return None
        if "latency" in self._profiler:
            return self.cost(design)["latency"]
        return self._latency.profile(sample_of(self.blocks, design))

    def cost(self, design) -> dict:
        """The profilers' exact costs of ``design`` (memoised)."""
        design = tuple(design)
        if design not in self._costs:
            sample = sample_of(self.blocks, design)
            self._costs[design] = {k: float(p.profile(sample)) for k, p in self._profiler.items()}
        return self._costs[design]

    def within_budget(self, design) -> bool:
        c = self.cost(design) if self.budgets else {}
        return all(c[k] <= v for k, v in self.budgets.items())

    def _linear_costs(self, at) -> dict:
        """Per-choice cost deltas from the design ``at`` (single swaps, profiled): name -> (base cost, deltas)."""
        designs = swap_designs(self.space, at)
        out = {}
        for name in self._profiler:
            fit = fit_contributions(self.space, designs, [self.cost(d)[name] for d in designs], reference=at)
            out[name] = (fit.intercept, fit.values)
        return out

    def _budget_constraints(self, linear) -> list:
        return [OneHotConstraint(name, tuple(linear[name][1]), ub=limit - linear[name][0])
                for name, limit in self.budgets.items()]

    def _ilp(self, scores, *, exclude=(), allowed=None, constraints=None):
        result = best_designs(scores, constraints=self._constraints if constraints is None else constraints,
                              k=1, exclude=exclude, allowed=allowed, time_limit=self.time_limit)
        self.ilp_seconds += result.solve_s
        self.ilp_calls += result.milp_calls
        return result

    # -- the lifecycle -------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        self.blocks, self.space = read_blocks(self.model_space)
        self._rng = np.random.default_rng(self.seed)
        self._costs: dict = {}
        self._latency = self._latency_measure()
        self._profiler = self._profilers() if self.budgets or self.base == "cheapest" else {}
        self.allowed = [np.ones(n, dtype=bool) for n in self.space.n_choices]
        first = [0] * len(self.blocks)
        for blocks, k in self.space.groups:       # NNI's default of an InputChoice: its first n_chosen inputs
            for r, b in enumerate(blocks):
                first[b] = int(r < k)
        self._first = tuple(first)
        self._cardinality = [OneHotConstraint(f"n_chosen of {self.blocks[blocks[0]].label}", tuple(
            np.array([0.0, float(i in blocks)]) if self.space.n_choices[i] == 2 and i in blocks
            else np.zeros(self.space.n_choices[i]) for i in range(len(self.blocks))), lb=k, ub=k)
            for blocks, k in self.space.groups]
        self._constraints = list(self._cardinality)
        linear = self._linear_costs(self._first) if self._profiler else None
        if linear is not None:
            self._prune(linear)
            self._cheapest_design = self._cheapest_within(linear)
        self.base_design = self._base_design()
        if self.budgets and not self.within_budget(self.base_design):
            raise ValueError(f"base must be a design within the budgets {self.budgets}, but got "
                             f"{sample_of(self.blocks, self.base_design)} costing {self.cost(self.base_design)}.")
        for i, j in enumerate(self.base_design):
            self.allowed[i][j] = True
        if linear is not None and self.base_design != self._first:
            linear = self._linear_costs(self.base_design)    # per-choice costs: deltas from the base
        self._linear = linear
        if linear is not None:
            self._constraints = self._cardinality + self._budget_constraints(linear)
        self.minimum = free_parameters(self.space, self.allowed)
        n = self.estimate_evaluations if self.estimate_evaluations is not None else self.minimum
        if n < self.minimum:
            raise ValueError(f"estimate_evaluations must be >= {self.minimum} (the {self.estimate!r} estimate's "
                             f"minimum on this space: 1 + sum of (choices - 1)), but got {n}.")
        engine_budget = getattr(self.engine, "max_model_count", None)
        if isinstance(engine_budget, int) and engine_budget < n:
            raise ValueError(f"max_trial_number must be >= {n} (the evaluations MathNAS's {self.estimate!r} estimate "
                             f"spends), but got {engine_budget}.")
        self._plan = self._estimate_plan(n)

    def _cheapest_within(self, linear, tries: int = 100):
        """The cheapest design by the linear costs that the profilers find within the budgets (the linear
        model's ``tries`` cheapest designs in order, lazily by :func:`~deepmad_nni.core.block_ilp.iter_designs`:
        no cuts, so a hundred tries stay fast); :class:`MathNASInfeasible` when none is."""
        names = list(self.budgets) or list(linear)
        scale = {n: self.budgets.get(n) or max(abs(linear[n][0]), 1.0) for n in names}
        scores = [-sum(linear[n][1][i] / scale[n] for n in names) for i in range(len(self.blocks))]
        seen, stats = [], {"milp_calls": 0, "solve_s": 0.0}
        try:
            for design, _ in islice(iter_designs(scores, constraints=self._cardinality, allowed=self.allowed,
                                                 stats=stats), tries):
                if self.within_budget(design):
                    return design
                seen.append(design)
        finally:
            self.ilp_seconds += stats["solve_s"]
            self.ilp_calls += stats["milp_calls"]
        least = self.cost(seen[0]) if seen else {}
        raise MathNASInfeasible(
            "no design meets the budgets " + ", ".join(f"{k} <= {v:.6g}{UNITS[k]}" for k, v in self.budgets.items())
            + ": the cheapest design costs " + ", ".join(f"{k} = {least.get(k, float('nan')):.6g}{UNITS[k]}"
                                                         for k in self.budgets)
            + (f" ({sample_of(self.blocks, seen[0])})" if seen else "") + f"; {len(seen)} cheapest designs tried"
            + (f"; latency {self._latency.describe()}." if "latency" in self.budgets else "."))

    def _prune(self, linear) -> None:
        """Disallow the choices whose linear lower bound (every other block at its cheapest) exceeds a budget."""
        for name, limit in self.budgets.items():
            base_cost, deltas = linear[name]
            floor = base_cost + sum(d[a].min() for d, a in zip(deltas, self.allowed))
            for i, (d, a) in enumerate(zip(deltas, self.allowed)):
                low = floor - d[a].min() + d
                keep = a & (low <= limit * (1 + 1e-12))
                if keep.any():
                    self.allowed[i] = keep

    def _base_design(self) -> tuple:
        if isinstance(self.base, dict):
            return design_of(self.blocks, self.base)
        if self.base == "cheapest":
            return self._cheapest_design
        if self.base == "first":
            return self._first
        for _ in range(10_000):
            d = random_design(self.space, self._rng, self.allowed)
            if not self.budgets or self.within_budget(d):
                return d
        return self._cheapest_design

    def _estimate_plan(self, n: int) -> list:
        if self.estimate == "swap":
            designs = swap_designs(self.space, self.base_design, self.allowed)
            plan, skipped = [], 0
            for d in designs:
                if self.budgets and not self.within_budget(d):
                    d = self._repair(d, keep=next(i for i, (a, b) in enumerate(zip(d, self.base_design)) if a != b))
                if d is None or d in plan:
                    skipped += 1
                else:
                    plan.append(d)
            if skipped:
                _logger.info("MathNAS: %d single swap(s) from the base exceed a budget even repaired: not evaluated.",
                             skipped)
            extra = n - len(designs)
        else:
            plan, extra = [], n
        if extra > 0:
            plan += sampled_designs(self.space, extra, self._rng, self.allowed, exclude=plan,
                                    accept=self.within_budget if self.budgets else None)
        return plan

    def _repair(self, design, keep: int):
        """A swap over a budget, brought within it: the other (ungrouped) blocks move to their cheapest choice,
        the largest linear saving first, until the profilers admit it (None if they never do).  The row is no
        longer a single swap; the least-squares fit takes it like any other."""
        names = list(self.budgets)
        deltas = [sum(self._linear[n][1][i] / self.budgets[n] for n in names) for i in range(len(self.blocks))]
        design, grouped = list(design), self.space.grouped
        order = []
        for i, d in enumerate(deltas):
            if i == keep or i in grouped:
                continue
            j = int(np.flatnonzero(self.allowed[i])[np.argmin(d[self.allowed[i]])])
            if d[design[i]] > d[j]:
                order.append((d[design[i]] - d[j], i, j))
        for _, i, j in sorted(order, reverse=True):
            design[i] = j
            if self.within_budget(tuple(design)):
                return tuple(design)
        return None

    def _fit(self) -> None:
        rows = [e for e in self.history if e.metric is not None]
        reference = self.base_design if self.estimate == "swap" else None
        self.contributions = fit_contributions(self.space, [e.design for e in self.history],
                                               [e.metric for e in self.history], reference=reference,
                                               allowed=self.allowed)
        if not self.contributions.determined:
            _logger.warning("MathNAS: %d evaluations with a metric determine %d of the model's %d parameters; "
                            "unidentified choices are not proposed.", len(rows), self.contributions.rank,
                            self.contributions.parameters)

    def next_design(self):
        """The ILP's best design not evaluated yet and within the budgets by the profilers (None: none left).

        With a fixed estimate (``refit=False``) the designs come best first from one lazy k-best enumeration
        (:func:`~deepmad_nni.core.block_ilp.iter_designs`); with ``refit`` each call solves anew with a
        no-good cut on every design evaluated (:func:`~deepmad_nni.core.block_ilp.best_designs`)."""
        c = self.contributions
        allowed = [a & ok for a, ok in zip(self.allowed, c.identified)]
        done = {e.design for e in self.history}
        for _ in range(MAX_CUTS):
            if self.refit:
                result = self._ilp(c.values, exclude=done | self._over, allowed=allowed)
                design = result.best
                if design is None:
                    _logger.info("MathNAS: the ILP has no further design (%s).", result.message)
            else:
                if self._stream is None:
                    self._stream_stats = {"milp_calls": 0, "solve_s": 0.0}
                    self._stream = iter_designs(c.values, constraints=self._constraints, allowed=allowed,
                                                stats=self._stream_stats)
                before = dict(self._stream_stats)
                design = next((d for d, _ in self._stream if d not in done), None)
                self.ilp_seconds += self._stream_stats["solve_s"] - before["solve_s"]
                self.ilp_calls += self._stream_stats["milp_calls"] - before["milp_calls"]
                if design is None:
                    _logger.info("MathNAS: every design within the budgets has been proposed.")
            if design is None:
                return None
            if not self.budgets or self.within_budget(design):
                return design
            self._over.add(design)
            self.cuts += 1
        return None

    def _submit(self, design, phase, pending) -> None:
        evaluation = Evaluation(design, sample_of(self.blocks, design), phase, latency=self.latency_of(design))
        if phase == "search":
            evaluation.predicted = self.contributions.predict(design)
        model = self.model_space.freeze(evaluation.sample)
        self.engine.submit_models(model)
        self.history.append(evaluation)       # evaluated from now on: later solves cut it
        pending.append((evaluation, model))

    def _collect(self, pending) -> None:
        if pending:
            self.engine.wait_models(*(m for _, m in pending))
        for evaluation, model in pending:
            evaluation.metric = metric_value(model.metric)
        pending.clear()

    def _run(self) -> None:
        self._prepare()
        self._over: set = set()
        self._stream, self._stream_stats = None, {}
        restored = {tuple(d): (m, ms) for d, m, ms in self._restored}
        pending = []
        for design in self._plan:
            if design in restored:
                self.history.append(self._restored_evaluation(design, "estimate", *restored.pop(design)))
                continue
            if not self.wait_for_resource():
                _logger.warning("MathNAS: NNI's budget ran out during the estimate (%d of %d evaluated).",
                                len(self.history), len(self._plan))
                break
            self._submit(design, "estimate", pending)
        self._collect(pending)
        self._fit()
        for design, (metric, ms) in restored.items():
            self.history.append(self._restored_evaluation(design, "search", metric, ms))
        while self.wait_for_resource():
            if self.refit:
                self._fit()
            design = self.next_design()
            if design is None:
                break
            self._submit(design, "search", pending)
            if self.refit:
                self._collect(pending)
        self._collect(pending)
        _logger.info("MathNAS: %d evaluations (%d estimate), ILP %d solves in %.3f s, %d cut(s)%s.",
                     len(self.history), sum(e.phase == "estimate" for e in self.history), self.ilp_calls,
                     self.ilp_seconds, self.cuts, self._latency_summary())

    def _restored_evaluation(self, design, phase, metric, ms) -> Evaluation:
        return Evaluation(design, sample_of(self.blocks, design), phase, metric,
                          latency=ms if ms is not None else self.latency_of(design))

    def _latency_summary(self) -> str:
        ms = [e.latency for e in self.history if e.latency is not None]
        if not ms:
            return ""
        budget = f", budget {self.latency:.6g} ms" if self.latency is not None else ""
        return f"; latency {min(ms):.4g}-{max(ms):.4g} ms{budget} ({self._latency.describe()})"

    # -- checkpointing -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The evaluated designs with their metrics and latencies (ms; None without a latency measure)."""
        return {"evaluated": [(list(e.design), e.metric) for e in self.history],
                "latency_ms": [e.latency for e in self.history]}

    def load_state_dict(self, state_dict: dict) -> None:
        evaluated = state_dict.get("evaluated", [])
        latency = list(state_dict.get("latency_ms", [])) + [None] * len(evaluated)
        self._restored = [(tuple(d), m, ms) for (d, m), ms in zip(evaluated, latency)]
