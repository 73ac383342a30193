"""A design as JSON (trial user attributes, cache key) and back."""
from __future__ import annotations

import dataclasses


def design_structure(architecture) -> list[dict]:
    """The TinyNAS structure format (``to_structure``) when every block has a class there; otherwise one
    dict of :class:`~deepmad_nni.core.Stage` fields per stage (e.g. NAS-Bench-Macro's ``skip`` layers)."""
    from ..core.tinynas import to_structure
    try:
        return to_structure(architecture)
    except ValueError:
        return [dataclasses.asdict(st) for st in architecture.stages]


def architecture_of(structure, *, resolution: int, in_channels: int = 3, num_classes: int):
    """Inverse of :func:`design_structure`."""
    from ..core.arch import Architecture, Stage
    from ..core.tinynas import from_structure
    if structure and "block" in structure[0]:
        return Architecture(tuple(Stage(**d) for d in structure), resolution, in_channels, num_classes)
    return from_structure(structure, resolution=resolution, num_classes=num_classes)


def proxy_architecture(architecture, *, in_channels: int, num_classes: int, resolution: int,
                       width_multiplier: float = 1.0):
    """``architecture`` adapted to a dataset (channels, classes, resolution) with widths scaled."""
    from ..core.arch import Architecture

    def w(c: int) -> int:
        return c if width_multiplier == 1.0 else max(8, int(round(c * width_multiplier / 8)) * 8)

    stages = []
    for i, st in enumerate(architecture.stages):
        c_in = in_channels if i == 0 else w(st.c_in)
        stages.append(dataclasses.replace(st, c_in=c_in, c_out=w(st.c_out), mid=w(st.mid) if st.mid else 0))
    return Architecture(tuple(stages), resolution, in_channels, num_classes)
