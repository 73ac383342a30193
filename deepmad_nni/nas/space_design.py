"""A design of a read space (:class:`SpaceDesign`): a canonical sample with the reader's figures of it."""
from __future__ import annotations

from dataclasses import dataclass

from deepmad_nni.core.score import Score


@dataclass(frozen=True)
class SpaceDesign:
    """A sample (every label, inactive ones at their first value) and its DeepMAD figures."""

    sample: dict
    score: Score
    architecture = None     # a hub-space design has no core Architecture (DesignResult reads this)


def as_designs(model, keys) -> list[SpaceDesign]:
    """Index samples as designs: canonical samples (inactive labels at their first value), reader's figures."""
    out = []
    for key in keys:
        sample = model.desc.canonical(model.sample(key))
        out.append(SpaceDesign(sample, model.desc.evaluate(sample, alpha=model.alpha, beta=model.beta,
                                                           convention=model.convention)))
    return out
