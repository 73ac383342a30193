"""Export a DeepMAD design: as an NNI frozen model, as an NNI sample (JSON), through the core's structure format."""
from __future__ import annotations

import json
from pathlib import Path

from .route import core_mapping, full_sample as _full


def _sample_of(design) -> dict:
    return dict(design.sample if hasattr(design, "sample") else design)


def frozen_model(space, design):
    """The NNI frozen model (a plain ``nn.Module``) of a design (a DesignRecord or a sample dict)."""
    return space.freeze(_full(space, _sample_of(design)))


def sample_json(design, path=None) -> str:
    """The design's NNI sample as JSON (label -> value); written to ``path`` when given."""
    text = json.dumps(_sample_of(design), indent=2, sort_keys=True)
    if path is not None:
        Path(path).write_text(text + "\n")
    return text


def load_sample(path) -> dict:
    """A sample written by :func:`sample_json`."""
    return json.loads(Path(path).read_text())


def to_structure(space, design) -> list[dict]:
    """The design in the official structure format (``deepmad_nni.core.to_structure``).

    Only for spaces that map to a core Family (the package's spaces, NAS-Bench-Macro); hub spaces with
    per-block choices have no such form and raise ValueError.
    """
    from deepmad_nni.core import to_structure as core_to_structure
    mapping = core_mapping(space)
    if mapping is None:
        raise ValueError(f"to_structure needs a space that maps to a core Family (search_spaces.*), but got "
                         f"{type(space).__name__}; export its sample or frozen model instead.")
    return core_to_structure(mapping[2](_sample_of(design)))


def architecture(space, design):
    """The core Architecture of a design of a space that maps to a core Family."""
    mapping = core_mapping(space)
    if mapping is None:
        raise ValueError(f"{type(space).__name__} does not map to a core Family.")
    return mapping[2](_sample_of(design))
