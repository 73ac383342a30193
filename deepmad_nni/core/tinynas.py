"""The official DeepMAD/TinyNAS structure format: a list of stage dicts (class, in, out, s, k, L, btn).

Classes: ``ConvKXBNRELU`` (conv), ``SuperResK1KXK1`` (bottleneck), ``SuperResK1DWK1`` (mbconv),
``SuperResK1DWSEK1`` (mbconv_se); ``SuperResKXKX`` (basic) is read and written too.  Files may hold the
list itself or a dict with ``best_structures`` (the published model files); both are Python literals.
"""
from __future__ import annotations

import ast
import json

from .arch import Architecture, Stage

CLASS_OF_BLOCK = {"conv": "ConvKXBNRELU", "bottleneck": "SuperResK1KXK1", "mbconv": "SuperResK1DWK1",
                  "mbconv_se": "SuperResK1DWSEK1", "basic": "SuperResKXKX"}
BLOCK_OF_CLASS = {v: k for k, v in CLASS_OF_BLOCK.items()}


def to_structure(arch: Architecture) -> list[dict]:
    out = []
    for st in arch.stages:
        if st.block not in CLASS_OF_BLOCK:
            raise ValueError(f"The structure format has no class for block {st.block!r}.")
        d = {"class": CLASS_OF_BLOCK[st.block], "in": st.c_in, "out": st.c_out, "s": st.stride, "k": st.kernel}
        if st.block != "conv":
            d["L"] = st.depth
            d["btn"] = st.mid if st.mid else st.c_out
        out.append(d)
    return out


def from_structure(structure, *, resolution: int = 224, num_classes: int = 1000) -> Architecture:
    """Architecture from a list of stage dicts (or a dict holding ``best_structures``)."""
    if isinstance(structure, dict):
        if "best_structures" not in structure:
            raise ValueError("A structure dict must hold 'best_structures', but got keys "
                             f"{sorted(structure)}.")
        structure = structure["best_structures"][0]
    if not isinstance(structure, (list, tuple)) or not structure:
        raise ValueError(f"structure must be a non-empty list of stage dicts, but got {type(structure).__name__}.")
    stages = []
    for i, d in enumerate(structure):
        cls = d.get("class")
        if cls not in BLOCK_OF_CLASS:
            raise ValueError(f"structure[{i}]['class'] must be one of {sorted(BLOCK_OF_CLASS)}, but got {cls!r}.")
        block = BLOCK_OF_CLASS[cls]
        missing = [k for k in ("in", "out", "k") if k not in d]
        if missing:
            raise ValueError(f"structure[{i}] lacks the keys {missing}.")
        mid = int(d.get("btn", 0)) if block in ("bottleneck", "mbconv", "mbconv_se") else 0
        stages.append(Stage(block, int(d["in"]), int(d["out"]), int(d.get("s", 1)), int(d["k"]),
                            int(d.get("L", 1)), mid))
    return Architecture(tuple(stages), resolution=resolution, in_channels=stages[0].c_in, num_classes=num_classes)


def parse_structure_text(text: str):
    """Parse a structure file: JSON or a Python literal (the published model files)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return ast.literal_eval(text.strip())
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"Cannot parse the structure text as JSON or a Python literal: {err}") from None
