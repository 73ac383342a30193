"""The mathematics of DeepMAD and its solver: numpy, scipy and the standard library only."""
from .arch import Architecture, Conv, Stage
from .family import Family, Op, Slot
from .presets import FAMILIES, PRESETS, Preset, get_family, get_preset
from .program import Program
from .result import Design, DesignResult
from .score import Score, score
from .solver import solve
from .tinynas import from_structure, parse_structure_text, to_structure

__all__ = ["Architecture", "Conv", "Stage", "Family", "Op", "Slot", "FAMILIES", "PRESETS", "Preset",
           "get_family", "get_preset", "Program", "Design", "DesignResult", "Score", "score", "solve",
           "from_structure", "parse_structure_text", "to_structure"]
