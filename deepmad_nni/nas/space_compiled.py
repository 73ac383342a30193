"""What solving needs of a description for one (alpha, beta, convention), built once and cached per description
(:func:`compiled`): the model, its Lagrangian, the extremes of F, P and N."""
from __future__ import annotations

import weakref

from .space_lagrangian import Lagrangian
from .space_model import SpaceModel


class Compiled:
    """What solving needs of a description for one (alpha, beta, convention), built once and cached."""

    def __init__(self, desc, alpha, beta, convention):
        self.model = SpaceModel(desc, alpha, beta, convention)
        self._lagrangian = None
        self._ranges: dict = {}

    def lagrangian(self) -> Lagrangian:
        """Q exactly when its table keeps the elimination within the cell limit, else Q's tangent bound."""
        if self._lagrangian is None:
            lag = Lagrangian(self.model)
            if lag.exact["Q"] and not lag.plan({"E", "Q", "F", "P", "T", "N", "H"})[2].exact:
                lag = Lagrangian(self.model, exact_depths=False)
            self._lagrangian = lag
        return self._lagrangian

    def extreme(self, name: str, sign: float) -> tuple:
        """(sign * max_x sign * name(x), its maximiser) for an additive F, P or N: exact."""
        key = (name, sign)
        if key not in self._ranges:
            value, x = self.lagrangian().maximise({name: sign})
            self._ranges[key] = (sign * value, x)
        return self._ranges[key]

    def layer_range(self) -> tuple[int, int]:
        lo, hi = self.extreme("N", -1.0)[0], self.extreme("N", 1.0)[0]
        return max(1, int(round(lo))), max(1, int(round(hi)))


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # description -> {program key: Compiled}


def compiled(desc, alpha, beta, convention) -> Compiled:
    per_desc = _CACHE.setdefault(desc, {})
    key = (tuple(alpha), float(beta), convention)
    if key not in per_desc:
        per_desc[key] = Compiled(desc, tuple(alpha), float(beta), convention)
    return per_desc[key]
