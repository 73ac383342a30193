"""DeepMAD for ``nnictl create``: an NNI tuner over HPO search spaces, its classArgs validator, trial code.

Register once (``NNI_CONFIG_DIR`` chooses where NNI keeps the registry)::

    nnictl algo register --meta deepmad_nni/tuner/meta.yml

then ``tuner: {name: DeepMAD, classArgs: {family: mbv2-se-cifar, flops: 2.0e6, top_k: 6}}`` in an
experiment config; see docs/nnictl.md and experiments/nnictl/.
"""
from pathlib import Path

from .space import SearchSpaceError, architecture_from_parameters, family_from_search_space
from .validator import DeepMADClassArgsValidator, check_class_args

META_FILE = Path(__file__).with_name("meta.yml")


def __getattr__(name):
    if name == "DeepMADTuner":  # imports nni
        from .tuner import DeepMADTuner
        return DeepMADTuner
    raise AttributeError(f"module 'deepmad_nni.tuner' has no attribute {name!r}")


__all__ = ["DeepMADTuner", "DeepMADClassArgsValidator", "SearchSpaceError", "META_FILE", "architecture_from_parameters",
           "check_class_args", "family_from_search_space"]
