"""The solver's plan: its stages in order, each with its named settings and its share of the time.

A :class:`Plan` is data: :func:`deepmad_nni.core.runner.run_plan` runs its stages one after the other and
nothing else decides what the solver does.  Every tuning number of the solver is a field below, with what
it does; the algorithm modules (rounding, local search, evolution, box search, bounds, branch and bound)
take them as arguments and hold none of their own.  ``deepmad-nni design --explain`` prints the plans
(:func:`explain`).

Time.  With a time limit T, stage k may run until ``t0 + (time_share_1 + ... + time_share_k) * T``: time a
stage leaves unused passes to the next one.  A stage whose settings hold further ``*_share`` fields uses
them as fractions of T too.  The quick solve (no time limit) runs :data:`QUICK_PLAN`'s stages to their
ends, without deadlines; when they round no feasible design, its fallback plan runs with
``fallback_seconds`` as T.

Size regimes.  ``min_designs`` / ``max_designs`` on a stage limit it to families with more than / at most
that many designs (the relaxation and the climbs need a large family to pay; tiny families are enumerated
before any plan runs: :data:`ENUMERATE_MAX`).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace

ENUMERATE_MAX = 20_000        # method="auto" scores every design of a family at most this large (core/bruteforce.py)
LARGE_FAMILY = 10 ** 6        # families above this size get the relaxation, the climbs and their restarts


@dataclass(frozen=True)
class Numerics:
    """Tolerances of floating point, not tuning: they only decide when two numbers are the same."""

    same: float = 1e-9            # relative: an improvement must exceed this; a value on the grid within it
    fd_step: float = 1e-6         # forward-difference step of SLSQP's Jacobians (on variables scaled to [0, 1])
    slsqp_scale: float = 1e4      # the objective is divided by this inside SLSQP
    slsqp_tolerance: float = 1e-6   # SLSQP's ftol
    active: float = 1e-5          # a constraint within this of binding is active (KKT multipliers)
    clip_log: float = 40.0        # multipliers are searched as logarithms within +-clip_log
    log_floor: float = 1e-12      # guard against log(0) and division by 0; a multiplier of 0 starts at log(log_floor)
    n_unit: float = 50.0          # multipliers are searched in units: n0 as log(n0 / n_unit),
    mu_unit: float = 1000.0       # mu as log(mu_unit * mu / s), s the scale of the root bound


NUMERICS = Numerics()


@dataclass(frozen=True)
class Batches:
    """Sizes of the vectorised batches: memory against Python overhead, not the search's outcome."""

    neighbours: int = 60_000      # rows of the sides of the neighbours the local search scores per batch
    leaves: int = 4096            # branch-and-bound leaves scored per batch
    move_cache: int = 100_000     # best neighbours the local search remembers before it starts over
    families: int = 32            # slot tables kept, per (family, convention, alpha); the least recently used go
    slot_lookups: int = 64        # structures derived from one slot table kept (local search, count tables):
    #                               up to about 1.3 MB each on resnet-bottleneck-224, so at most about 100 MB


BATCHES = Batches()


@dataclass(frozen=True)
class Relaxation:
    """Stage ``relax-and-round``: SLSQP points of the continuous relaxation (core/continuous.py), rounded
    (core/rounding.py) and climbed (core/local_search.py)."""

    start: float                  # SLSQP starts with every variable this fraction from its lower to upper bound
    first_iterations: int         # SLSQP iterations from the start
    more_iterations: int          # SLSQP iterations of every further point (from the optimum)
    points: tuple                 # points rounded after the optimum, by name (rounding.relaxation_points)
    roundings: int                # best roundings of each point that are climbed
    combinations: int             # roundings of a point scored at most (beyond: best Lagrangian options per slot)
    nearest_over_budget: int      # roundings over the budgets scored when none is within them
    margins: tuple                # relative room in the budgets and rho, tried in turn when nothing rounds feasible
    spare_margin: float           # the room of the "spare" point
    climb: tuple                  # neighbourhoods of each rounding's climb (local_search.NEIGHBOURHOODS)
    polish: tuple                 # neighbourhoods of the best local optima's climbs
    polished: int = 1             # distinct local optima polished, best first


@dataclass(frozen=True)
class MultiplierBound:
    """Stage ``multiplier-bound``: the Lagrangian bound (core/lagrangian.py) at the relaxation's KKT
    multipliers, on tables of ``grid`` points.  Proves the quick solve's bound; no fitting."""

    grid: int


@dataclass(frozen=True)
class Evolution:
    """The official DeepMAD search (core/evolution.py), as the TinyNAS code runs it."""

    population: int = 256
    mutations: int = 2            # slots mutated per child
    batch: int = 256              # children per generation
    shallow: float = 0.9          # share of the first population drawn at the smallest depth and width
    steps: tuple = (-2, -1, 1, 2)   # grid steps of a width / mid mutation; depth mutations use them too
    evaluations: int = 500_000    # candidates at most


EVOLUTION = Evolution()


@dataclass(frozen=True)
class Climb:
    """The local search's neighbourhoods (core/local_search.py)."""

    width_steps: tuple = (-1, 0, 1)          # grid steps of width (and mid) in ``shift`` and ``pair``
    depth_steps: tuple = (-2, -1, 0, 1, 2)   # blocks added/removed in ``shift`` and ``pair``
    trade_blocks: int = 64                   # most blocks a ``trade`` move adds or removes


CLIMB = Climb()


@dataclass(frozen=True)
class Box:
    """The box search (core/neighbourhood.py): the branch and bound on a box around the incumbent."""

    radius: int                   # grid steps of width and mid around the incumbent's
    depth_radius: int             # blocks around the incumbent's depths
    wide_radius: int              # the radius tried once when a box brings nothing
    nodes: int                    # nodes per box (times the radius), so that results do not depend on time
    time_share: float             # seconds per box (times the radius), as a share of the time limit
    last_share: float             # a new box starts only with this share of its time left before the deadline


@dataclass(frozen=True)
class EvolveAndClimb:
    """Stage ``evolve-and-climb`` (families above LARGE_FAMILY): the official evolution, a climb from its
    best design, each promising local optimum polished by small boxes; then restarts (shorter evolutions,
    new seeds)."""

    evolution: Evolution
    first_share: float            # time of the first evolution, share of the time limit
    restart_evaluations: int      # candidates of each later evolution
    starts: int                   # evolutions at most
    seed_stride: int              # evolution k runs with seed + k * seed_stride
    polish_within: float          # local optima within this (relative) of the best so far get polished
    polish_share: float           # time of one polish, share of the time limit
    polish_box: Box


@dataclass(frozen=True)
class EvolveOnly:
    """Stage ``evolution`` (families of at most LARGE_FAMILY designs): the official evolution until it
    stalls."""

    evolution: Evolution
    patience: int                 # generations without progress before it stops


@dataclass(frozen=True)
class BoxSearch:
    """Stage ``box-search``: boxes around the best design, re-centred while they improve it."""

    box: Box


@dataclass(frozen=True)
class FitMultipliers:
    """Stage ``fit-multipliers``: (lambda_F, lambda_P, mu, n0) minimising the root bound, Nelder-Mead on
    their logarithms (core/multipliers.py), from the relaxation's KKT multipliers (when there are) and
    from ``starts``."""

    grid: int                     # table points during the fit
    evaluations: int              # root bounds per Nelder-Mead start
    starts: tuple                 # further starts, as log(lambda_F F / s), log(lambda_P P / s), log(1000 mu / s),
    #                               log(n0 / 50) with s the scale of the root bound
    xatol: float                  # Nelder-Mead's step tolerance (on the logarithms)


@dataclass(frozen=True)
class SpreadBound:
    """Stage ``spread-bound``: the bound that keeps part of Q = exp(std of depths) (core/spread_bound.py),
    taken at the tangent points ``x0`` of exp, on tables of ``grid`` points."""

    grid: int
    tangents: tuple


@dataclass(frozen=True)
class PartitionBound:
    """Stage ``partition-bound``: the family split by its last ``levels`` slots (combo and depth), each part
    bounded at the multipliers that suit it (core/partition_bound.py); ``rounds`` fits, each aimed at the
    part with the largest bound."""

    levels: int
    max_parts: int                # parts listed at most (more: the stage gives no bound)
    rounds: int
    fit: FitMultipliers           # each round's Nelder-Mead (its ``starts`` unused: it starts at the root's)


@dataclass(frozen=True)
class CountBound:
    """Stage ``count-bound``: bounds that keep the layer count (and, where Q needs it, the sum of Q's depths)
    exact, with a line under Q (core/count_tables.py), on tables of ``grid`` points, fitted part by part
    (core/count_bound.py: the last slots' choices and the free prefix's count); Nelder-Mead on (lambda_F,
    lambda_P, mu, the line's std x0, n0 for the depth sum) from the fitted root multipliers, then ``rounds``
    fits each aimed at the part whose bound is the largest."""

    grid: int
    evaluations: int              # bounds of the first Nelder-Mead (all parts at once)
    tangents: tuple               # the line's std x0 tried first, the best one starting the Nelder-Mead
    rounds: int
    round_evaluations: int        # bounds of each round's Nelder-Mead
    xatol: float                  # Nelder-Mead's step tolerance (on the logarithms, and on x0)
    tree_sets: int                # multiplier sets the branch and bound takes (the best for all parts at once, then
    #                               those of the largest parts' bounds)
    max_parts: int                # choices of the last slot at most for the parts (more: the whole network's counts)
    probe_share: float            # when both counts run: each first fits for this share of the stage's time, then
    #                               the one with the smaller bound goes on from its best multipliers (the other
    #                               one too, if time is left when that fit converges)


@dataclass(frozen=True)
class Tree:
    """Stage ``branch-and-bound``: the exact search over the whole family (core/branch_and_bound.py),
    depth first, slots fixed from the last, on prefix tables of ``grid`` points."""

    grid: int


@dataclass(frozen=True)
class RhoRangeSearch:
    """core/rho_range.py on large families: bisection on rho_0 with quick solves for the lowest rho_0."""

    tolerance: float = 0.01       # relative width of the last bisection interval
    steps: int = 16               # quick solves at most
    lowest: float = 1e-3          # rho_0 below this fraction of the unconstrained optimum's rho is not searched


RHO_RANGE = RhoRangeSearch()


@dataclass(frozen=True)
class Stage:
    """One step of a plan: which runner (``name``), its settings, its share of the time limit, and the
    family sizes it runs on."""

    name: str
    settings: object
    time_share: float = 0.0
    min_designs: int = 0               # runs on families of more designs than this
    max_designs: float = float("inf")  # and at most this many
    note: str = ""


@dataclass(frozen=True)
class Plan:
    name: str
    stages: tuple
    fallback: "Plan | None" = None     # runs when the stages found no feasible design (quick solve only)
    fallback_seconds: float = 0.0

    def __post_init__(self):
        for size in (LARGE_FAMILY, LARGE_FAMILY + 1):   # the stages that run on a family of either regime
            total = sum(s.time_share for s in self.stages_for(size))
            if not 0.0 <= total <= 1.0 + NUMERICS.same:
                raise ValueError(f"The time shares of plan {self.name!r} must sum to at most 1 on a family of "
                                 f"{size} designs, but got {total:g}.")

    def stages_for(self, designs: int) -> tuple:
        """The stages that run on a family of ``designs`` designs."""
        return tuple(s for s in self.stages if s.min_designs < designs <= s.max_designs)

    def without(self, *names: str) -> "Plan":
        """The plan less the stages called ``names``; the time share of a removed stage passes to the next
        stage when that one runs only on families the removed one ran on (else the share is dropped)."""
        out, carry, lo, hi = [], 0.0, 0, float("inf")   # the share to pass on, and the families it is for
        for s in self.stages:
            if s.name in names:
                carry, lo, hi = carry + s.time_share, max(lo, s.min_designs), min(hi, s.max_designs)
                continue
            if carry and s.min_designs >= lo and s.max_designs <= hi:
                s = replace(s, time_share=s.time_share + carry)
            out.append(s)
            carry, lo, hi = 0.0, 0, float("inf")
        return replace(self, stages=tuple(out))

    def with_settings(self, name: str, **changes) -> "Plan":
        """The plan with stage ``name``'s settings changed (``time_share`` changes the stage itself)."""
        out = []
        for s in self.stages:
            if s.name == name:
                share = changes.pop("time_share", s.time_share)
                s = replace(s, settings=replace(s.settings, **changes) if changes else s.settings, time_share=share)
            out.append(s)
        return replace(self, stages=tuple(out))


QUICK_ROUNDING = Relaxation(start=0.3, first_iterations=25, more_iterations=12, points=("last-stage",), roundings=1,
                             combinations=8192, nearest_over_budget=256, margins=(0.01, 0.03), spare_margin=0.02,
                             climb=("global",), polish=("global", "pair"))
TIMED_ROUNDING = replace(QUICK_ROUNDING, first_iterations=40, more_iterations=25,
                         points=("snapped", "last-stage", "spare", "small-kernels"), roundings=3, climb=("global", "shift"),
                         polish=("global", "shift", "trade", "pair"))

_POLISH_BOX = Box(radius=1, depth_radius=2, wide_radius=2, nodes=2000, time_share=0.0425, last_share=0.2)
_BOX = replace(_POLISH_BOX, nodes=20_000, time_share=0.085)
_FIT = FitMultipliers(grid=12, evaluations=60, starts=((-2.8, -2.5, 0.9, 0.7), (-2.0, -3.0, 1.0, 0.3)), xatol=1e-3)
_SPREAD = SpreadBound(grid=12, tangents=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0))
_TREE = Tree(grid=48)
#: The settings of stage ``partition-bound`` for a plan that adds it; none of the plans below does: ``count-bound``
#: splits the family by the same last slots and by the free prefix's count too.
PARTITION_BOUND = PartitionBound(levels=1, max_parts=2_000_000, rounds=200, fit=replace(_FIT, evaluations=40))
_FIT_TIMED = replace(_FIT, evaluations=200)   # Nelder-Mead converges in about 200 root bounds (R34, R50, B0)
_COUNT = CountBound(grid=4, evaluations=100, tangents=(2.0, 2.5, 3.0, 3.5), rounds=20, round_evaluations=60,
                    xatol=1e-3, tree_sets=3, max_parts=200_000, probe_share=0.1)

#: The exact part of every timed plan, and the whole of the box search's plan (a box is a family of its own).
_PROOF = (
    Stage("fit-multipliers", _FIT, 0.10, note="the multipliers of the tightest root bound"),
    Stage("spread-bound", _SPREAD, 0.05, note="a root bound that keeps part of Q"),
    Stage("branch-and-bound", _TREE, note="the exact search, until it closes or the limit"),
)

#: With a time limit: designs until 0.65 of the limit, then the proof.
TIMED_PLAN = Plan("timed", (
    Stage("relax-and-round", TIMED_ROUNDING, 0.30, min_designs=LARGE_FAMILY,
          note="designs and the relaxation's multipliers"),
    Stage("evolve-and-climb", EvolveAndClimb(evolution=EVOLUTION, first_share=0.2, restart_evaluations=60_000,
                                             starts=24, seed_stride=7919, polish_within=0.005, polish_share=0.07,
                                             polish_box=_POLISH_BOX),
          0.10, min_designs=LARGE_FAMILY, note="designs only; proves nothing"),
    Stage("evolution", EvolveOnly(evolution=EVOLUTION, patience=200), 0.45, max_designs=LARGE_FAMILY,
          note="designs only; proves nothing"),
    Stage("box-search", BoxSearch(_BOX), 0.10, note="better designs near the best; proves nothing"),
    Stage("fit-multipliers", _FIT_TIMED, 0.10, note="the multipliers of the tightest root bound"),
    Stage("count-bound", _COUNT, 0.30, note="a bound per part (last slots, layer count or depth sum), Q under a line"),
    Stage("spread-bound", _SPREAD, 0.05, note="a root bound that keeps part of Q"),
    _PROOF[-1],
))

#: With no time limit: the rounded relaxation and the bound of its multipliers.
QUICK_PLAN = Plan("quick", (
    Stage("relax-and-round", QUICK_ROUNDING, min_designs=LARGE_FAMILY,
          note="designs and the relaxation's multipliers"),
    Stage("multiplier-bound", MultiplierBound(grid=12), note="the bound of the relaxation's KKT multipliers"),
), fallback=TIMED_PLAN.without("relax-and-round"), fallback_seconds=10.0)

#: A box around the incumbent (core/neighbourhood.py): only the proof, with the incumbent as the floor.
BOX_PLAN = Plan("box", _PROOF)


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_format(v) for v in value) + ")"
    if is_dataclass(value):
        return type(value).__name__
    return str(value)


def explain(plan: Plan, indent: str = "") -> str:
    """The plan as text: one line per stage (name, time share, family sizes), then its settings."""
    lines = [f"{indent}plan {plan.name!r}:"]
    for k, s in enumerate(plan.stages, 1):
        regime = LARGE_FAMILY + 1 if s.max_designs > LARGE_FAMILY else LARGE_FAMILY
        total = sum(t.time_share for t in plan.stages[:k] if t in plan.stages_for(regime))
        when = "to its end" if s.time_share == 0 else f"{s.time_share:.1%} of the limit (until {total:.1%})"
        if k == len(plan.stages) and plan.name != "quick":
            when = "until the limit"
        size = ""
        if s.min_designs:
            size = f", families of more than {s.min_designs:,} designs"
        if s.max_designs != float("inf"):
            size = f", families of at most {s.max_designs:,} designs"
        lines.append(f"{indent}  {k}. {s.name} [{when}{size}] {s.note}")
        lines += [f"{indent}       {line}" for line in _settings_lines(s.settings)]
    if plan.fallback is not None:
        lines.append(f"{indent}  when no feasible design comes out: the plan below with a {plan.fallback_seconds:g} s limit")
        lines.append(explain(plan.fallback, indent + "    "))
    return "\n".join(lines)


def _settings_lines(settings, prefix: str = "") -> list[str]:
    out = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        if is_dataclass(value):
            out += _settings_lines(value, f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name} = {_format(value)}")
    return out


def explain_all() -> str:
    """Every plan the solver runs, and the settings shared by all stages."""
    parts = [explain(QUICK_PLAN), explain(TIMED_PLAN), explain(BOX_PLAN), "shared:"]
    for name, value in (("climb", CLIMB), ("batches", BATCHES), ("numerics", NUMERICS), ("rho_range", RHO_RANGE)):
        parts += [f"  {name}.{line}" for line in _settings_lines(value)]
    parts.append(f"  families of at most {ENUMERATE_MAX:,} designs are enumerated (method='auto')")
    return "\n".join(parts)
