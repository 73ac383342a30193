"""The program's input over a read space, checked in one place: the objective's weights (:func:`program_weights`,
also the reader's :meth:`~deepmad_nni.nas.reader.SpaceDescription.evaluate`) and the limits (:class:`Limits`)."""
from __future__ import annotations

from dataclasses import dataclass

from deepmad_nni.core.program import non_negative_number, non_negative_weights, positive_number
from deepmad_nni.core.score import default_alpha

# the core's conventions the reader implements (its figures test ``convention == "official"``); the core's
# "tinynas" needs the TinyNAS code's SE blocks, which a read space does not name
READER_CONVENTIONS = ("official", "paper")


def program_weights(num_stages: int, alpha, beta, convention: str) -> tuple[tuple[float, ...], float]:
    """Checked (alpha, beta) of the objective over ``num_stages`` stages (alpha None: the default weights)."""
    if convention not in READER_CONVENTIONS:
        raise ValueError(f"convention must be one of {list(READER_CONVENTIONS)} on a read space, "
                         f"but got {convention!r}.")
    alpha = non_negative_weights("alpha", default_alpha(num_stages) if alpha is None else alpha)
    if len(alpha) != num_stages:
        raise ValueError(f"alpha must have one weight per stage of the space ({num_stages}), but got {len(alpha)}.")
    return alpha, non_negative_number("beta", beta)


def checked_program(desc, flops, params, rho, alpha, beta, convention, rho_required=True):
    """Checked (limits, alpha, beta) of the program over ``desc``: the one place the solver validates them."""
    alpha, beta = program_weights(desc.num_stages, alpha, beta, convention)
    lim = Limits(positive_number("flops", flops), positive_number("params", params),
                 positive_number("rho", rho, allow_none=not rho_required))
    return lim, alpha, beta


@dataclass(frozen=True)
class Limits:
    """The program's limits: FLOPs (MACs), params, rho (None: no limit)."""

    flops: float | None
    params: float | None
    rho: float | None

    def excess(self, rho, flops, params) -> float:
        """Summed relative excess over the limits (0 when within all)."""
        v = max(0.0, rho / self.rho - 1.0) if self.rho is not None else 0.0
        if self.flops is not None:
            v += max(0.0, flops / self.flops - 1.0)
        if self.params is not None:
            v += max(0.0, params / self.params - 1.0)
        return v

    def objective_key(self):
        """Search key: the objective, and the excess over every limit."""
        return lambda fig: (fig[0], self.excess(fig[1], fig[2], fig[3]))

    def rho_key(self):
        """Search key for the smallest rho within the budgets."""
        return lambda fig: (-fig[1], self.excess(0.0, fig[2], fig[3]))

    def describe(self) -> str:
        parts = [f"{amount(self.flops)} FLOPs" if self.flops is not None else None,
                 f"{amount(self.params)} params" if self.params is not None else None]
        return " and ".join(p for p in parts if p) or "no budget"


def amount(v: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= size:
            return f"{v / size:.4g}{unit}"
    return f"{v:.4g}"
