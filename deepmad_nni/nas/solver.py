"""The DeepMAD program over a space read by :func:`deepmad_nni.nas.reader.read_space` (hub spaces, any labels).

    maximise  E(x) - beta Q(x)   s.t.   F(x) <= F_0,  P(x) <= P_0,  rho(x) <= rho_0

over samples x (one value per label).  The reader writes F (MACs), P and, per stage j, T_j = sum of log w_l
and N_j = number of main-path convs as sums of *label factors* (tables over a few labels each).  The entropy
is E = sum_j B_j T_j with B_j = sum_{i >= j} A_i, A_i = alpha_i s log(r_i^2 c_i) (a table over the labels
of stage i's end, constant on most spaces); Q = exp(std(depths)) is a table over the depth labels.

**Bound.**  With T = sum_j T_j, N = sum_j N_j and h(n) = n log(n / rho_0), every feasible x has
T(x) >= h(N(x)): rho <= rho_0 holds for the whole network (the official rho is the maximum over stage
prefixes, the whole network among them), and rho = N / exp(T / N).  So for multipliers lam_F, lam_P, mu >= 0

    OPT <= G(theta) = max_x [E - beta Q - lam_F F - lam_P P + mu (T - h(N(x)))] + lam_F F_0 + lam_P P_0,

because for a feasible x every added term is >= 0.  Where N spans too many labels to tabulate h(N(x)), a free
nu relaxes n = N(x): G = max_x [... + mu T - nu N] + ... + max_{N_lo <= n <= N_hi} (nu n - mu h(n)) (for
feasible x take n = N(x)).  The inner maximum is a sum of label factors: max-sum variable elimination
computes it exactly (:mod:`.max_sum`; a bucket over more than ``ELIMINATION_CELL_LIMIT`` cells is split in
mini-buckets, which can only raise it: still a bound).  Terms spanning too many labels are bounded above,
never below: B_j by the next of at most ``WEIGHT_GRID`` values >= it (T_j >= 0 as w >= 1), a stage end by
its largest value, -beta Q by its tangent plane (Q is convex in the depth vector) or by -beta (Q >= 1).
G is convex and piecewise linear in theta; a box-step cutting-plane method minimises it.  A best-first branch
and bound then minimises G per node with a prefix of the labels fixed (first those N depends on, the
depths: with them fixed the rho term is exact): the bound is the largest bound of an open node, and when
every node closes on the incumbent, the incumbent is optimal.

**Search.**  From the Lagrangian maximisers met by the dual: a repair to feasibility (the move losing least
objective per unit of excess removed), then best-improvement ascent over feasible single-label moves and pair
moves (an improving over-budget move and the best second move), then restarts (a kick across the budget's
edge, a perturbed incumbent, a maximiser at perturbed multipliers) drawn with ``seed``.  The quick solve
(``time_limit=None``) stops after a fixed amount of work (``QUICK_EVALUATIONS`` samples scored,
``QUICK_BRANCH_EVALUATIONS`` maximisations), so it gives the same design on every run; a ``time_limit``
continues the restarts and the branch and bound, in turn, until it is spent.  Spaces with at most
``enumerate_limit`` samples are enumerated.

**Statuses** (:mod:`deepmad_nni.core.result`): ``optimal`` (enumerated, or the bound within
``OPTIMAL_TOLERANCE`` relative of the best design), ``feasible-with-gap``, ``infeasible`` (proven: a budget
below the smallest network, or a certificate G_0(theta) < 0 of the program without objective),
``limit-reached`` (no design found, none proven impossible).  Without a design, the message gives the range
of rho the space reaches within the budgets (:func:`rho_range`).

Samples are scored from the reader's tables, never frozen; a design's figures are the reader's
:meth:`~deepmad_nni.nas.reader.SpaceDescription.evaluate`.
"""
from __future__ import annotations

import itertools
import math
import random
import time

from deepmad_nni.core.program import positive_number
from deepmad_nni.core.result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL, DesignResult

from .space_branch import BranchAndBound
from .space_compiled import compiled as _compiled
from .space_design import SpaceDesign, as_designs
from .space_dual import Dual, DualProgram
from .space_enumerate import enumerated, enumerated_reach, within_budgets
from .space_infeasible import certificate, floor_message, rho_message
from .space_program import Limits, checked_program
from .space_search import Search, climbed, ranked_starts, restarted, unique
from .space_settings import (ENUMERATE_LIMIT, NODE_ROUNDS, OPTIMAL_TOLERANCE, QUICK_BRANCH_CELLS,
                             QUICK_BRANCH_EVALUATIONS, QUICK_EVALUATIONS, RANKING_PENALTY, STARTS)

__all__ = ["ENUMERATE_LIMIT", "SpaceDesign", "rho_range", "solve_space"]


def _reach(comp, lim):
    """(smallest rho found, rho of the best design without the rho limit, proven lower bound of rho) within
    the FLOPs/params budgets; the first two are None when no sample within them is found.  The smallest rho
    comes from a search minimising rho from the smallest networks and from the maximisers of the rho
    certificate's dual (run at the rho of the smallest network), which also gives the proven bound."""
    budgets = Limits(lim.flops, lim.params, None)
    search = Search(comp.model, budgets.rho_key(), 1)
    smallest = unique([tuple(comp.extreme("F", -1.0)[1]), tuple(comp.extreme("P", -1.0)[1])])
    reference = max(comp.model.figures(x)[1] for x in smallest)
    _, proven, maximisers = certificate(comp, Limits(lim.flops, lim.params, reference))
    starts = [search.state(x) for x in unique(smallest + maximisers)]
    climbed(search, ranked_starts(starts, RANKING_PENALTY, STARTS))
    best = search.best()
    _, _, designs, _, _ = _searched(comp, budgets, 1, None, 0, branch=False)
    low = -best[0][0] if best else None
    return low, designs[0].score.effectiveness if designs else None, proven


def _searched(comp, lim, top_k, time_limit, seed, t0=None, max_evaluations=None, branch=True):
    """The quick plan, then (with ``time_limit``) more of it until the time is spent, on a space too large to
    enumerate: (status, message, designs, bound, samples scored).  ``branch=False`` skips the quick plan's
    branch and bound (when only the design is wanted)."""
    floor = floor_message(comp, lim)
    if floor is not None:
        return INFEASIBLE, floor, [], -math.inf, 0
    run = _Run(comp, lim, top_k, seed, max_evaluations)
    if run.certified is not None and run.certified[0]:
        return run.no_design()
    run.quick(branch)
    if time_limit is not None:
        run.until((t0 if t0 is not None else time.perf_counter()) + time_limit)
    return run.outcome()


class _Run:
    """One solve of the large-space route: the root dual, the search from its maximisers, the branch and
    bound; ``quick`` does the fixed work of the quick plan, ``until`` goes on until a deadline."""

    def __init__(self, comp, lim, top_k, seed, max_evaluations):
        self.comp, self.lim, self.model, self.max_evaluations = comp, lim, comp.model, max_evaluations
        self.lag = comp.lagrangian()
        self.dual = Dual(self.lag, DualProgram({"E": 1.0, "Q": 1.0}, lim.flops, lim.params, lim.rho),
                          comp.layer_range())
        self.bound, self.u = self.dual.minimise()
        self.search = Search(self.model, lim.objective_key(), top_k)
        self.states = [self.search.state(x) for x in unique(self.dual.maximisers)]
        self.scale = max(abs(self.bound), 1.0)
        self.rng, self.restarts = random.Random(seed), itertools.count()
        counted = list(self.lag.count_scope or ())
        order = counted + [k for k in range(len(self.model.sizes)) if k not in counted]
        self.tree = BranchAndBound(self.dual, order, self.bound, self.u, self.search)
        # no maximiser within the limits: try to prove that no sample is (before any search)
        feasible = any(st.excess <= 0 for st in self.states)
        self.certified = certificate(comp, lim) if lim.rho is not None and not feasible else None

    @property
    def nodes(self) -> int:
        return self.search.evaluated + self.dual.evaluations

    def incumbent(self):
        return self.search.best()[0][0] if self.search.pool else None

    def restart(self):
        climbed(self.search, [restarted(self.search, self.rng, self.dual, self.u, self.states,
                                        next(self.restarts), self.scale)])

    def quick(self, branch=True):
        """The STARTS best maximisers repaired and climbed, restarts until QUICK_EVALUATIONS samples were
        scored (or ``max_evaluations``), then (``branch``) the branch and bound within its quick budget."""
        climbed(self.search, ranked_starts(self.states, RANKING_PENALTY * self.scale, STARTS))
        quota = min(QUICK_EVALUATIONS, self.max_evaluations if self.max_evaluations is not None else math.inf)
        while self.search.evaluated < quota:
            self.restart()
        evaluations, cells = self.dual.evaluations, self.lag.cells
        while branch and self.search.pool and not self.tree.done:
            calls = (NODE_ROUNDS + 1) * self.tree.children()     # the next step's maximisations, at most
            if (self.dual.evaluations - evaluations + calls > QUICK_BRANCH_EVALUATIONS or
                    self.lag.cells - cells + calls * self.lag.cells / self.lag.calls > QUICK_BRANCH_CELLS):
                break
            self.tree.step(self.incumbent())

    def until(self, deadline):
        """Branch-and-bound steps and restarts, in turn, until ``deadline`` (or ``max_evaluations``)."""
        def more():
            return time.perf_counter() < deadline and (self.max_evaluations is None or
                                                       self.search.evaluated < self.max_evaluations)
        while more():
            if self.search.pool and not self.tree.done:
                self.tree.step(self.incumbent())
            if more():
                self.restart()

    def no_design(self):
        """Infeasible when proven (the certificate), else limit-reached; either way with the rho range."""
        lim = self.lim
        if lim.rho is None:
            return LIMIT_REACHED, f"No feasible sample found ({self.nodes} samples scored).", [], self.bound, self.nodes
        self.certified = self.certified or certificate(self.comp, lim)
        reach = _reach(self.comp, lim)
        if self.certified[0]:
            return INFEASIBLE, rho_message(lim, *reach, self.certified[1]), [], -math.inf, self.nodes
        return (LIMIT_REACHED, rho_message(lim, *reach, self.certified[1], found=self.nodes), [], self.bound,
                self.nodes)

    def outcome(self):
        if not self.search.pool:
            return self.no_design()
        designs = as_designs(self.model, [key for _, _, key, _ in self.search.best()])
        best = designs[0].score.objective
        bound = max(self.tree.bound(self.incumbent()), best)
        if bound - best <= OPTIMAL_TOLERANCE * max(abs(bound), 1.0):
            return (OPTIMAL, f"Optimal: the Lagrangian bound closes on the best of {self.nodes} samples.", designs,
                    bound, self.nodes)
        return (FEASIBLE_WITH_GAP, f"Best of {self.nodes} samples scored; the Lagrangian bound is {bound:.6g} "
                f"(gap {100 * (bound - best) / max(abs(bound), 1.0):.3g}%).", designs, bound, self.nodes)


# -- public API --------------------------------------------------------------------------------------------------
def solve_space(desc, *, flops=None, params=None, rho, alpha=None, beta=10.0, convention="official", top_k=1,
                time_limit=None, seed=0, enumerate_limit=ENUMERATE_LIMIT) -> DesignResult:
    """Solve DeepMAD's program over a :class:`~deepmad_nni.nas.reader.SpaceDescription` (module docstring).

    ``flops`` (MACs) / ``params`` budgets, ``rho`` = rho_0; ``time_limit=None`` is the quick, deterministic
    solve (a fixed amount of work); a ``time_limit`` in seconds adds restarts drawn with ``seed`` and branch
    and bound until it is spent.  Returns a :class:`~deepmad_nni.core.result.DesignResult` whose ``designs``
    are the ``top_k`` best distinct networks met (:class:`SpaceDesign`), ``bound`` a proven upper bound of
    the objective and ``nodes`` the number of samples scored (Lagrangian maximisations included).
    """
    t0 = time.perf_counter()
    lim, alpha, beta = checked_program(desc, flops, params, rho, alpha, beta, convention)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, but got {top_k!r}.")
    positive_number("time_limit", time_limit)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, but got {seed!r}.")
    if isinstance(enumerate_limit, bool) or not isinstance(enumerate_limit, int) or enumerate_limit < 0:
        raise ValueError(f"enumerate_limit must be a non-negative integer, but got {enumerate_limit!r}.")
    comp = _compiled(desc, alpha, beta, convention)
    if desc.size() <= enumerate_limit:
        status, message, designs, bound, nodes = enumerated(comp, lim, top_k)
    else:
        status, message, designs, bound, nodes = _searched(comp, lim, top_k, time_limit, seed, t0)
    return DesignResult(status, message, designs, bound, time.perf_counter() - t0, nodes,
                        constraints={"flops": flops, "params": params, "rho": rho})


def rho_range(desc, *, flops=None, params=None, alpha=None, beta=10.0, convention="official"
              ) -> tuple[float, float]:
    """(rho_min, rho_max) of the space within the FLOPs/params budgets: rho_min the smallest rho of any sample
    within them, rho_max the rho of the best design with the rho constraint removed (above it the constraint
    no longer changes the optimum).  Exact on spaces of at most ``ENUMERATE_LIMIT`` samples, else from
    deterministic searches.  Raises a ValueError naming the budget when no sample meets it."""
    lim, alpha, beta = checked_program(desc, flops, params, None, alpha, beta, convention, rho_required=False)
    comp = _compiled(desc, alpha, beta, convention)
    floor = floor_message(comp, lim)
    if floor is not None:
        raise ValueError(floor)
    if desc.size() <= ENUMERATE_LIMIT:
        budget_fit = within_budgets(comp.model, lim)
        if not budget_fit:
            raise ValueError(f"No sample meets {lim.describe()} together.")
        return enumerated_reach(budget_fit)
    low, high, _ = _reach(comp, lim)
    if low is None or high is None:
        raise ValueError(f"No sample found within {lim.describe()} together.")
    return low, high
