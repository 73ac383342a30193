"""The lifecycle shared by the strategies that spend real evaluations (``DeepMADOptuna``, ``DeepMADEvolution``).

Propose one design at a time, freeze and submit it to NNI's engine while a worker and budget are free, and
hear its metric back through the engine's TrainingEnd event (so the sequential engine and NNI's default
engine with concurrent trials both work).  A subclass implements ``_prepare`` (once, before the first
proposal), ``_propose`` (the next design: a :class:`Proposal`, or None when it has none) and ``_finished``.
The submitted sample carries the proposal's hyperparameters and figures (:mod:`.trial_info`), so NNI's
web UI shows them with the trial's parameters.  Designs are keyed by network
(:meth:`deepmad_nni.nas.route._Route.network`): two samples that build the same network are one design.
Beside FLOPs and params, ``latency`` (with ``latency_table``) and ``max_feature_map`` are budgets
(:mod:`deepmad_nni.core.device_budgets`): the solver's designs meet them, and so does every mutant proposed (:meth:`admitted`).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from nni.nas.execution.event import ModelEventType
from nni.nas.strategy import Strategy

from deepmad_nni.core.program import positive_number
from deepmad_nni.core.score import Score

from deepmad_nni.core.device_budgets import DeviceBudgets
from .trial_info import annotated

_logger = logging.getLogger(__name__)


@dataclass
class Proposal:
    """A design to evaluate: the full sample, its network key, its DeepMAD figures and where it came from."""

    sample: dict
    network: str
    score: Score
    source: str                      # "program" (the solver's design) or "mutation"
    info: dict = field(default_factory=dict)
    metric: float | None = None


def check_int(name: str, value, *, low: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, but got {value!r}.")
    return value


def metric_value(metric) -> float | None:
    """The scalar of an NNI metric (a number, or a dict with 'default'); None when missing or not finite."""
    if isinstance(metric, dict):
        metric = metric.get("default")
    try:
        value = float(metric)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class EvaluationLoop(Strategy):
    """Base of the evaluation-spending DeepMAD strategies (module docstring)."""

    def __init__(self, *, flops=None, params=None, input_size=None, latency=None, latency_table=None,
                 max_feature_map=None):
        super().__init__()
        self.flops = positive_number("flops", flops)
        self.params = positive_number("params", params)
        self.device = DeviceBudgets.create(latency=latency, latency_table=latency_table,
                                           max_feature_map=max_feature_map)
        if self.flops is None and self.params is None:
            raise ValueError("flops and params cannot both be None: DeepMAD designs within a budget.")
        if input_size is not None and (len(tuple(input_size)) != 4 or min(input_size) < 1):
            raise ValueError(f"input_size must be (N, C, H, W) with positive entries, but got {input_size!r}.")
        self.input_size = tuple(input_size) if input_size is not None else None
        self.route = None
        self.history: list[Proposal] = []     # finished evaluations, in order
        self._running: dict = {}               # NNI model -> Proposal

    # -- what a subclass provides -------------------------------------------------------------------
    def _prepare(self) -> None:
        pass

    def _propose(self) -> Proposal | None:
        raise NotImplementedError

    def _finished(self, proposal: Proposal) -> None:
        pass

    # -- the lifecycle ----------------------------------------------------------------------------------
    @property
    def evaluated(self) -> set:
        """Network keys evaluated or being evaluated by this strategy."""
        return {p.network for p in self.history} | {p.network for p in self._running.values()}

    def within_budget(self, score: Score) -> bool:
        return (self.flops is None or score.flops <= self.flops) and (self.params is None or score.params <= self.params)

    def admitted(self, sample: dict, score: Score) -> dict | None:
        """The device figures of ``sample`` (latency_ms / max_feature_map, :mod:`deepmad_nni.core.device_budgets`) when it is within
        every budget (FLOPs, params, latency, feature map), else None."""
        if not self.within_budget(score):
            return None
        figures = self.device.figures(self.route, sample)
        return figures if self.device.met(figures) else None

    def _initialize(self, model_space, engine):
        engine.register_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)
        return model_space

    def _cleanup(self) -> None:
        self.engine.unregister_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)

    def _run(self) -> None:
        from .route import route_of
        if self.route is None:
            self.route = route_of(self.model_space, self.input_size)
        self._prepare()
        while self.wait_for_resource():
            proposal = self._propose()
            if proposal is None:
                _logger.warning("%s has no new design to propose after %d evaluations; stopping.",
                                type(self).__name__, len(self.history))
                break
            model = self.model_space.freeze(annotated(proposal.sample, proposal.score, source=proposal.source,
                                                      **proposal.info))
            self._running[model] = proposal
            self.engine.submit_models(model)
        self.engine.wait_models()

    def _on_training_end(self, event) -> None:
        proposal = self._running.pop(event.model, None)
        if proposal is None:
            return
        proposal.metric = metric_value(event.model.metric)
        self.history.append(proposal)
        self._finished(proposal)
