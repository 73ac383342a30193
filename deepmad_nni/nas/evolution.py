"""``DeepMADEvolution``: regularized evolution seeded by DeepMAD's designs, its mutants ranked by DeepMAD's objective.

A drop-in for ``nni.nas.strategy.RegularizedEvolution``::

    strategy = DeepMADEvolution(flops=60e6)          # instead of RegularizedEvolution(...)

It first evaluates the program's ``initial`` best distinct designs (the DeepMAD top-k).  Then, each step,
a tournament of ``sample_size`` drawn from the ``population_size`` most recent evaluations picks the
parents by metric; the mutants of the best parent (one label changed; then the next parent; then two labels)
are ranked by DeepMAD's objective under (rho_0, alpha, beta) (:mod:`.mutation`), and the best one never
evaluated is submitted.  No random mutant is trained: the objective chooses, the metric selects parents.
The draws come from ``random.Random(seed)``: the same seed and metrics give the same designs.
"""
from __future__ import annotations

import random

from deepmad_nni.core.program import non_negative_number, non_negative_weights, positive_number
from deepmad_nni.core.score import CONVENTIONS

from .loop import EvaluationLoop, Proposal, check_int
from .mutation import ranked_mutants


class DeepMADEvolution(EvaluationLoop):
    """See the module docstring.  Keyword-only settings: ``flops`` (MACs) / ``params`` budgets, ``rho``
    (rho_0; default as :class:`deepmad_nni.DeepMAD`), ``alpha``, ``beta``, ``convention``, ``initial``
    (DeepMAD designs evaluated first), ``population_size``, ``sample_size``, ``seed``, ``time_limit`` (the
    solver's; None: quick), ``input_size``, ``latency`` (ms, with ``latency_table``) and ``max_feature_map``
    budgets as :class:`~deepmad_nni.DeepMAD`'s (docs/latency.md): seeds and mutants all meet them."""

    def __init__(self, *, flops=None, params=None, rho=None, alpha=None, beta: float = 10.0,
                 convention: str = "official", initial: int = 4, population_size: int = 20, sample_size: int = 5,
                 seed: int = 0, time_limit: float | None = None, input_size=None, latency=None,
                 latency_table=None, max_feature_map=None):
        super().__init__(flops=flops, params=params, input_size=input_size, latency=latency,
                         latency_table=latency_table, max_feature_map=max_feature_map)
        self.rho = positive_number("rho", rho)
        self.alpha = None if alpha is None else non_negative_weights("alpha", alpha)
        self.beta = non_negative_number("beta", beta)
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, but got {convention!r}.")
        self.convention = convention
        self.initial = check_int("initial", initial)
        self.population_size = check_int("population_size", population_size)
        self.sample_size = check_int("sample_size", sample_size)
        if self.sample_size > self.population_size:
            raise ValueError(f"sample_size must be <= population_size ({population_size}), but got {sample_size}.")
        self.seed = check_int("seed", seed, low=0)
        self.time_limit = positive_number("time_limit", time_limit)
        self._rng = random.Random(seed)
        self._seeds: list = []

    def extra_repr(self) -> str:
        return (f"flops={self.flops}, params={self.params}, rho={self.rho}, beta={self.beta}, initial={self.initial}, "
                f"population_size={self.population_size}, sample_size={self.sample_size}, seed={self.seed}")

    def _program(self) -> dict:
        return dict(flops=self.flops, params=self.params, rho=self.rho, alpha=self.alpha, beta=self.beta,
                    convention=self.convention)

    def _settings(self) -> dict:
        """The hyperparameters a trial shows (:mod:`.trial_info`)."""
        return {"rho0": self.rho, "alpha": self.alpha, "beta": self.beta}

    def _prepare(self) -> None:
        self.rho = self.route.resolve_rho(self.rho, flops=self.flops, params=self.params, alpha=self.alpha,
                                          beta=self.beta, convention=self.convention)
        from .route import DeepMADInfeasible, infeasible_message
        result, self._seeds = self.route.solve(**self._program(), top_k=self.initial, time_limit=self.time_limit,
                                               budgets=self.device.solve_kwargs())
        if not self._seeds:
            raise DeepMADInfeasible(infeasible_message(self.route, result, **self._program()))

    def _propose(self) -> Proposal | None:
        done = self.evaluated
        for rec in self._seeds:
            key = self.route.network(rec.sample)
            if key not in done:
                return Proposal(rec.sample, key, rec.score, "program", {"status": rec.status, **self._settings(),
                                                                         **rec.device})
        population = [p for p in self.history[-self.population_size:] if p.metric is not None]
        if not population:
            return None
        tournament = self._rng.sample(population, min(self.sample_size, len(population)))
        parents = sorted(tournament, key=lambda p: -p.metric) + sorted(
            (p for p in population if p not in tournament), key=lambda p: -p.metric)
        for pairs in (False, True):
            for parent in parents:
                ranked = ranked_mutants(self.route, [parent.sample], done, pairs=pairs, **self._program())
                for score, sample, key in ranked:
                    device = self.admitted(sample, score)
                    if device is not None:
                        return Proposal(sample, key, score, "mutation", {"parent": parent.network,
                                                                         **self._settings(), **device})
        return None

    def state_dict(self) -> dict:
        return {"history": [(p.sample, p.network, p.source, p.metric) for p in self.history],
                "rng": self._rng.getstate()}

    def load_state_dict(self, state_dict: dict) -> None:
        self._rng.setstate(_as_tuple(state_dict["rng"]))
        self._restored = state_dict["history"]

    def _run(self) -> None:
        restored = getattr(self, "_restored", None)
        if restored is not None:
            from .route import route_of
            if self.route is None:
                self.route = route_of(self.model_space, self.input_size)
            s = dict(alpha=self.alpha, beta=self.beta, convention=self.convention)
            self.history = [Proposal(sample, key, self.route.score(sample, **s), source, metric=metric)
                            for sample, key, source, metric in restored]
            self._restored = None
        super()._run()


def _as_tuple(state):
    """random.Random state after a JSON round trip (lists) back to the tuples setstate needs."""
    return tuple(_as_tuple(v) if isinstance(v, list) else v for v in state)
