"""The solver's result object (in the manner of scipy.optimize.OptimizeResult)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .arch import Architecture
from .score import Score

OPTIMAL = "optimal"
FEASIBLE_WITH_GAP = "feasible-with-gap"
LIMIT_REACHED = "limit-reached"   # the limit stopped the search before any feasible design was found
INFEASIBLE = "infeasible"
STATUSES = (OPTIMAL, FEASIBLE_WITH_GAP, LIMIT_REACHED, INFEASIBLE)


@dataclass(frozen=True)
class Design:
    """One design and its DeepMAD figures."""

    architecture: Architecture
    score: Score
    choices: tuple = ()  # one (c_out, Op, depth, mid) per slot of the family


@dataclass
class DesignResult:
    """Outcome of :func:`deepmad_nni.core.solve`.

    ``status``: ``"optimal"`` (the design's objective equals the proven maximum), ``"feasible-with-gap"``
    (a limit stopped the search; ``bound`` is a proven upper bound on the maximum and ``gap`` =
    ``bound - objective``), ``"limit-reached"`` (a limit stopped the search before any feasible design),
    ``"infeasible"`` (no design of the family meets the constraints; ``message`` gives the smallest
    FLOPs and params the family reaches).  ``designs`` holds the ``top_k`` best distinct designs found,
    best first; the top-level fields describe ``designs[0]``.
    """

    status: str
    message: str
    designs: list[Design] = field(default_factory=list)
    bound: float = float("nan")
    time_s: float = 0.0
    nodes: int = 0
    family: str = ""
    constraints: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return bool(self.designs)

    @property
    def architecture(self) -> Architecture | None:
        return self.designs[0].architecture if self.designs else None

    def _score(self, name):
        return getattr(self.designs[0].score, name) if self.designs else float("nan")

    entropy = property(lambda self: self._score("entropy"))
    effectiveness = property(lambda self: self._score("effectiveness"))
    rho = effectiveness
    q = property(lambda self: self._score("q"))
    objective = property(lambda self: self._score("objective"))
    flops = property(lambda self: self._score("flops"))
    params = property(lambda self: self._score("params"))

    @property
    def gap(self) -> float:
        """Proven ``bound - objective`` (0 when optimal; ``inf`` with no design)."""
        if not self.designs:
            return float("inf")
        return max(0.0, self.bound - self.objective)

    @property
    def relative_gap(self) -> float:
        return self.gap / abs(self.bound) if self.designs and self.bound else float("inf")

    def to_dict(self) -> dict:
        from .tinynas import to_structure

        def stages(d):   # designs read from an NNI space carry a sample, not an Architecture
            return to_structure(d.architecture) if d.architecture is not None else getattr(d, "sample", None)
        best = self.designs[0] if self.designs else None
        return {
            "status": self.status, "message": self.message, "family": self.family,
            "stages": stages(best) if best else None,
            "resolution": best.architecture.resolution if best and best.architecture is not None else None,
            "entropy": self.entropy, "effectiveness": self.effectiveness, "q": self.q,
            "objective": self.objective, "flops": self.flops, "params": self.params,
            "bound": self.bound, "gap": self.gap if best else None, "time_s": self.time_s, "nodes": self.nodes,
            "constraints": self.constraints,
            "alternatives": [{"stages": stages(d), "objective": d.score.objective,
                              "entropy": d.score.entropy, "effectiveness": d.score.effectiveness,
                              "flops": d.score.flops, "params": d.score.params} for d in self.designs[1:]],
        }

    def __repr__(self) -> str:
        return (f"DesignResult(status={self.status!r}, objective={self.objective:.4g}, gap={self.gap:.3g}, "
                f"flops={self.flops}, params={self.params}, rho={self.effectiveness:.4g}, time_s={self.time_s:.3g})")
