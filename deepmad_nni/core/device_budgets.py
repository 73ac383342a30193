"""Device budgets beside FLOPs and params: a latency (ms, predicted by a table) and the largest feature map.

One type for what ``DeepMAD``, ``DeepMADOptuna``, ``DeepMADEvolution`` and ``tune`` accept (docs/latency.md):
:meth:`DeviceBudgets.create` checks the arguments once, :meth:`solve_kwargs` hands them to the solver, and
:meth:`figures` / :meth:`met` check any sample (a mutant, a restored design) through a route (anything with
``predicted_latency(sample, table)`` and ``feature_map(sample)``, e.g. :mod:`deepmad_nni.nas.route`'s), which
predicts both without building the network.
"""
from __future__ import annotations

from dataclasses import dataclass

from .program import positive_number


@dataclass(frozen=True)
class DeviceBudgets:
    """``latency`` (ms, predicted by ``latency_table``), ``max_feature_map`` (elements per sample of the largest
    block input/output tensor); ``latency_table`` alone only reports each design's predicted latency."""

    latency: float | None = None
    latency_table: object = None        # a core LatencyTable
    max_feature_map: float | None = None

    @classmethod
    def create(cls, *, latency=None, latency_table=None, max_feature_map=None) -> "DeviceBudgets":
        latency = positive_number("latency", latency)
        max_feature_map = positive_number("max_feature_map", max_feature_map)
        if latency is not None and latency_table is None:
            raise ValueError("latency needs latency_table (a LatencyTable or a table file from deepmad-nni latency "
                             "profile), but got None.")
        if latency_table is not None:
            from .latency import as_table
            latency_table = as_table(latency_table)
        return cls(latency, latency_table, max_feature_map)

    @property
    def active(self) -> bool:
        return self.latency_table is not None or self.max_feature_map is not None

    def solve_kwargs(self) -> dict | None:
        """The budgets as :func:`deepmad_nni.core.solve` takes them; None without any."""
        if not self.active:
            return None
        return {"latency": self.latency, "latency_table": self.latency_table, "max_feature_map": self.max_feature_map}

    def figures(self, route, sample: dict) -> dict:
        """``latency_ms`` (with a table) and ``max_feature_map`` (with that budget) of ``sample``, by the route."""
        out = {}
        if self.latency_table is not None:
            out["latency_ms"] = route.predicted_latency(sample, self.latency_table)
        if self.max_feature_map is not None:
            out["max_feature_map"] = route.feature_map(sample)
        return out

    def met(self, figures: dict) -> bool:
        """Whether :meth:`figures` of a sample are within the budgets."""
        return ((self.latency is None or self.latency_table.within(figures["latency_ms"], self.latency))
                and (self.max_feature_map is None or figures["max_feature_map"] <= self.max_feature_map))

    def describe(self) -> str:
        parts = []
        if self.latency is not None:
            parts.append(f"latency={self.latency:g} ms ({self.latency_table.describe()})")
        elif self.latency_table is not None:
            parts.append(f"latency_table={self.latency_table.describe()}")
        if self.max_feature_map is not None:
            parts.append(f"max_feature_map={self.max_feature_map:g}")
        return ", ".join(parts)
