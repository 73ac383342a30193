"""``DeepMAD``: an NNI 3.0 NAS strategy that solves DeepMAD's program and submits the top designs.

A drop-in replacement for ``nni.nas.strategy.Random`` / ``RegularizedEvolution``::

    strategy = DeepMAD(flops=400e6, params=5e6, rho=0.5)      # instead of strategy = Random()
    NasExperiment(model_space, evaluator, strategy).run(config)

How the program is solved depends on the space:

* the package's spaces (``search_spaces``: ResNet, MBConv) and the NAS-Bench-Macro space map to a core
  ``Family``; :func:`deepmad_nni.core.solve` solves it with its proven status;
* any other space of 2-d convolutions (e.g. ``MobileNetV3Space``, ``ProxylessNAS``, ``ShuffleNetSpace``) is
  read by :func:`deepmad_nni.nas.reader.read_space` and solved by :func:`deepmad_nni.nas.solver.solve_space`.

No candidate is frozen to be scored; only the ``top_k`` distinct designs are frozen and submitted.
"""
from __future__ import annotations

import logging

from nni.nas.strategy import Strategy

from deepmad_nni.core.program import non_negative_number, non_negative_weights, positive_number
from deepmad_nni.core.score import CONVENTIONS

from deepmad_nni.core.device_budgets import DeviceBudgets
from .route import DeepMADInfeasible, DesignRecord, infeasible_message, route_of
from .trial_info import annotated

_logger = logging.getLogger(__name__)


class DeepMAD(Strategy):
    """Solve DeepMAD's program over the model space and submit the ``top_k`` distinct best designs.

    Parameters (keyword-only): ``flops`` (MACs) and/or ``params`` budgets; ``rho`` the effectiveness bound
    rho_0 (default: the family's on the package's spaces; on other spaces 0.5 when the space reaches it
    within the budgets, else the geometric middle of the rho range it reaches, see
    :meth:`deepmad_nni.nas.route._Route.default_rho`); ``alpha`` per-stage entropy weights (default 1, ...,
    1, 8); ``beta`` weight of the depth penalty Q; ``convention`` ``"official"`` or ``"paper"``; ``top_k``;
    ``time_limit`` seconds for the solver (``None``: the quick solve, deterministic); ``input_size``
    (N, C, H, W) for reading hub spaces (default (1, 3, 224, 224)); ``latency`` a budget in ms predicted by
    ``latency_table`` (a :class:`~deepmad_nni.core.latency.LatencyTable` or its file, from ``deepmad-nni latency
    profile``) and ``max_feature_map`` (elements of the largest block input/output tensor), on spaces that map
    to a core family (docs/latency.md).

    When the program has no design (a budget no sample meets, a rho_0 below what the space reaches) the
    strategy raises :class:`DeepMADInfeasible` with the reachable range, so the experiment fails with it.
    """

    def __init__(self, *, flops=None, params=None, rho=None, alpha=None, beta: float = 10.0,
                 convention: str = "official", top_k: int = 1, time_limit: float | None = None,
                 input_size=None, latency=None, latency_table=None, max_feature_map=None):
        super().__init__()
        self.device = DeviceBudgets.create(latency=latency, latency_table=latency_table,
                                           max_feature_map=max_feature_map)
        self.flops = positive_number("flops", flops)
        self.params = positive_number("params", params)
        self.rho = positive_number("rho", rho)
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, but got {convention!r}.")
        beta_f = non_negative_number("beta", beta)
        if alpha is not None:
            alpha = non_negative_weights("alpha", alpha)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, but got {top_k!r}.")
        self.time_limit = positive_number("time_limit", time_limit)
        if input_size is not None and (len(tuple(input_size)) != 4 or min(input_size) < 1):
            raise ValueError(f"input_size must be (N, C, H, W) with positive entries, but got {input_size!r}.")
        self.alpha, self.beta, self.convention = alpha, beta_f, convention
        self.top_k = top_k
        self.input_size = tuple(input_size) if input_size is not None else None
        self.designs: list[DesignRecord] = []
        self.result = None          # the solver's core DesignResult
        self.rho_used = self.rho    # rho_0 the designs were solved under (resolved by solve())
        self._submitted = 0

    def extra_repr(self) -> str:
        return (f"flops={self.flops}, params={self.params}, rho={self.rho}, alpha={self.alpha}, beta={self.beta}, "
                f"convention={self.convention!r}, top_k={self.top_k}, time_limit={self.time_limit}"
                + (f", {self.device.describe()}" if self.device.active else ""))

    # -- solving -------------------------------------------------------------------------------------
    def solve(self, space) -> list[DesignRecord]:
        """Solve the program over the NNI model space ``space``; fills and returns ``self.designs``.

        Raises :class:`DeepMADInfeasible` (naming the limits and the rho range the space reaches) when the
        program has no design."""
        route = route_of(space, self.input_size)
        rho = route.resolve_rho(self.rho, flops=self.flops, params=self.params, alpha=self.alpha, beta=self.beta,
                                convention=self.convention)
        self.rho_used = rho
        self.result, self.designs = route.solve(flops=self.flops, params=self.params, rho=rho, alpha=self.alpha,
                                                beta=self.beta, convention=self.convention, top_k=self.top_k,
                                                time_limit=self.time_limit, budgets=self.device.solve_kwargs())
        if not self.designs:
            raise DeepMADInfeasible(infeasible_message(route, self.result, flops=self.flops, params=self.params,
                                                       rho=rho, alpha=self.alpha, beta=self.beta,
                                                       convention=self.convention))
        return self.designs

    def _run(self) -> None:
        if not self.designs:
            self.solve(self.model_space)
            _logger.info("DeepMAD: %s, %s; submitting %d design(s).", self.result.status, self.result.message,
                         len(self.designs))
        models = []
        for rank, record in enumerate(self.designs[self._submitted:], start=self._submitted):
            if not self.wait_for_resource():
                break
            model = self.model_space.freeze(annotated(record.sample, record.score, source="program", rank=rank,
                                                      rho0=self.rho_used, alpha=self.alpha, beta=self.beta,
                                                      status=record.status, **record.device))
            self.engine.submit_models(model)
            models.append((record, model))
            self._submitted += 1
        if models:
            self.engine.wait_models(*(m for _, m in models))
        for record, model in models:
            record.metric = model.metric

    # -- checkpointing ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"designs": [d.to_dict() for d in self.designs], "submitted": self._submitted, "rho0": self.rho_used}

    def load_state_dict(self, state_dict: dict) -> None:
        self.designs = [DesignRecord.from_dict(d) for d in state_dict.get("designs", [])]
        self._submitted = int(state_dict.get("submitted", 0))
        self.rho_used = state_dict.get("rho0", self.rho_used)
