"""DeepMADTuner: an NNI HPO tuner that proposes the DeepMAD optimum over the experiment's search space.

On ``update_search_space`` it maps the choice lists onto the family template
(:func:`deepmad_nni.tuner.space.family_from_search_space`), solves the DeepMAD program over exactly those
choices (:func:`deepmad_nni.core.solve`, ``top_k`` distinct designs, best first; with a list of rho_0 values
the optima of every rho_0 come first, then the runners-up, round robin) and hands one design per
``generate_parameters`` call; when they are used up it raises ``nni.NoMoreTrialError``.  The solver's
figures of every proposal (objective, entropy, rho, FLOPs, params, status; the predicted latency with a
latency table) go to the dispatcher log.  ``latency`` / ``latency_table`` / ``max_feature_map`` are budgets as
in :func:`deepmad_nni.core.solve`.
A search space it cannot map raises :class:`~deepmad_nni.tuner.space.SearchSpaceError`, which NNI shows
in the experiment's status and log.
"""
from __future__ import annotations

import inspect
import logging
import os

from nni import NoMoreTrialError
from nni.tuner import Tuner

from ..core import Family, Op, Slot, from_structure, get_family, solve
from .space import family_from_search_space, parameters_from_architecture
from .validator import check_class_args

_logger = logging.getLogger(__name__)


def family_of_structure(structure) -> Family:
    """A template family with one slot per stage of ``structure`` (its values as single choices)."""
    arch = from_structure(structure)
    slots = []
    for st in arch.stages:
        if st.block == "bottleneck":
            op, mids = Op(st.block, st.kernel, mid_from_grid=True), (st.mid,)
        elif st.block in ("mbconv", "mbconv_se"):
            op, mids = Op(st.block, st.kernel, st.mid / st.c_out, "out"), ()
        else:
            op, mids = Op(st.block, st.kernel), ()
        slots.append(Slot(st.stride, (st.c_out,), (op,), (st.depth,), mids))
    return Family("structure", tuple(slots), arch.resolution, arch.in_channels, arch.num_classes)


def report_error_to_nni_manager(message: str) -> bool:
    """Send ``message`` to the NNI manager as a dispatcher error (experiment status ERROR, message in
    ``errors``).  NNI 3.0's dispatcher only logs an exception raised by a tuner command and keeps the
    experiment RUNNING forever, so the tuner reports it through the dispatcher that called it."""
    from nni.runtime.msg_dispatcher_base import MsgDispatcherBase
    frame = inspect.currentframe()
    while frame is not None:
        caller = frame.f_locals.get("self")
        if isinstance(caller, MsgDispatcherBase):
            caller.report_error(message)
            return True
        frame = frame.f_back
    return False


class DeepMADTuner(Tuner):
    """Propose DeepMAD designs over the search space's choices; classArgs in :mod:`.validator`."""

    def __init__(self, *, family=None, structure=None, flops=None, params=None, rho=None, alpha=None, beta=10.0,
                 convention="official", top_k=8, resolution=None, in_channels=None, num_classes=None,
                 time_limit=10.0, latency=None, latency_table=None, max_feature_map=None, **unknown):
        self.class_args_error = None
        try:
            args = check_class_args(family=family, structure=structure, flops=flops, params=params, rho=rho,
                                    alpha=alpha, beta=beta, convention=convention, top_k=top_k,
                                    resolution=resolution, in_channels=in_channels, num_classes=num_classes,
                                    time_limit=time_limit, latency=latency, latency_table=latency_table,
                                    max_feature_map=max_feature_map, **unknown)
        except ValueError as err:
            if "NNI_TUNER_COMMAND_CHANNEL" not in os.environ:
                raise
            # Inside NNI's dispatcher an exception here only says "Tuner did not connect"; report it on connect.
            _logger.error("Bad classArgs: %s", err)
            self.class_args_error = err
            return
        self.template = get_family(family) if family is not None else family_of_structure(structure)
        self.overrides = {k: args[k] for k in ("resolution", "in_channels", "num_classes") if args.get(k) is not None}
        self.flops, self.params = args.get("flops"), args.get("params")
        rho = args.get("rho")
        self.rhos = rho if isinstance(rho, list) else [rho]
        self.alpha, self.beta, self.convention = args.get("alpha"), args["beta"], convention
        self.top_k, self.time_limit = args["top_k"], args["time_limit"]
        self.budgets = {k: args[k] for k in ("latency", "latency_table", "max_feature_map") if args.get(k) is not None}
        self.proposals: list[dict] = []   # parameters, best first
        self.figures: list[dict] = []     # the solver's figures of each proposal
        self.results: dict[int, float] = {}
        self._next = 0
        self.family = None

    def __repr__(self) -> str:
        if self.class_args_error is not None:
            return f"DeepMADTuner(<bad classArgs: {self.class_args_error}>)"
        return (f"DeepMADTuner(family={self.template.name!r}, flops={self.flops}, params={self.params}, "
                f"rho={self.rhos}, beta={self.beta}, convention={self.convention!r}, top_k={self.top_k})")

    def update_search_space(self, search_space):
        try:
            if self.class_args_error is not None:
                raise self.class_args_error
            self._plan(search_space)
        except Exception as err:
            report_error_to_nni_manager(f"DeepMADTuner: {type(err).__name__}: {err}")
            raise

    def _plan(self, search_space):
        self.family = family_from_search_space(search_space, self.template, **self.overrides)
        runs = []
        for rho in self.rhos:
            res = solve(self.family, flops=self.flops, params=self.params, rho=rho, alpha=self.alpha, beta=self.beta,
                        convention=self.convention, top_k=self.top_k, time_limit=self.time_limit, **self.budgets)
            rho0 = self.family.default_rho if rho is None else rho
            _logger.info("DeepMAD solve (rho0=%s): %s; %s", rho0, res, res.message)
            runs.append((rho0, res))
        if not any(res.designs for _, res in runs):
            raise ValueError(f"DeepMAD found no design in the search space with flops <= {self.flops}, params <= "
                             f"{self.params}, rho <= rho0 (smaller networks have larger rho): "
                             + " | ".join(f"rho0={rho}: {res.status}: {res.message}" for rho, res in runs))
        self.proposals, self.figures, seen = [], [], set()
        for rank in range(self.top_k):
            for rho, res in runs:
                if rank < len(res.designs) and len(self.proposals) < self.top_k:
                    design = res.designs[rank]
                    p = parameters_from_architecture(design.architecture, self.family)
                    p = {k: v for k, v in p.items() if k in search_space}
                    key = tuple(sorted(p.items()))
                    if key in seen:
                        continue
                    seen.add(key)
                    self.proposals.append(p)
                    s = design.score
                    device = {name: values[rank] for name, values in (("latency_ms", getattr(res, "latencies", None)),
                              ("max_feature_map", getattr(res, "feature_maps", None))) if values}
                    self.figures.append({"rank": rank, "rho0": rho, "status": res.status, "bound": res.bound,
                                         "objective": s.objective,
                                         "entropy": s.entropy, "rho": s.effectiveness, "q": s.q,
                                         "flops": s.flops, "params": s.params, **device})
        self._next = 0
        _logger.info("DeepMAD proposes %d designs: %s", len(self.proposals), self.figures)

    def generate_parameters(self, parameter_id, **kwargs):
        if self.family is None:
            raise RuntimeError("DeepMADTuner.generate_parameters was called before update_search_space.")
        if self._next >= len(self.proposals):
            raise NoMoreTrialError(f"DeepMAD proposed all {len(self.proposals)} designs.")
        p = self.proposals[self._next]
        _logger.info("Trial parameter %s: design %d %s", parameter_id, self._next, self.figures[self._next])
        self._next += 1
        return dict(p)

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self.results[parameter_id] = value["default"] if isinstance(value, dict) else value

    def import_data(self, data):
        pass
