"""deepmad-nni: DeepMAD mathematical CNN design for NNI 3.0 and Optuna.

The core (:mod:`deepmad_nni.core`) needs only numpy and scipy; the NNI, torch and Optuna adapters are
imported on first use.
"""
from .core import (FAMILIES, PRESETS, Architecture, DesignResult, Family, Stage, from_structure, get_family,
                   get_preset, score, solve, to_structure)

__version__ = "0.1.0"

_LAZY = {
    "DeepMAD": ("deepmad_nni.nas.strategy", "DeepMAD"),
    "DeepMADOptuna": ("deepmad_nni.nas.optuna_strategy", "DeepMADOptuna"),
    "DeepMADEvolution": ("deepmad_nni.nas.evolution", "DeepMADEvolution"),
    "MathNAS": ("deepmad_nni.nas.mathnas", "MathNAS"),
    "analyze": ("deepmad_nni.nas.analyze", "analyze"),
    "DeepMADTuner": ("deepmad_nni.tuner", "DeepMADTuner"),
    "tune": ("deepmad_nni.optuna_loop", "tune"),
    "build_model": ("deepmad_nni.builder", "build_model"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'deepmad_nni' has no attribute {name!r}")


__all__ = ["FAMILIES", "PRESETS", "Architecture", "DesignResult", "Family", "Stage", "from_structure",
           "get_family", "get_preset", "score", "solve", "to_structure", *_LAZY]
