"""DeepMAD on NNI 3.0 model spaces: the space reader, the ``DeepMAD`` strategy, ``analyze`` and exports.

Modules: :mod:`.reader` (space -> description), :mod:`.trace` (dataflow dry run), :mod:`.solver` (program over
a description), :mod:`.route` (space -> core Family or reader: one solve/score/rho-range interface),
:mod:`.strategy` (``DeepMAD``), :mod:`.loop`, :mod:`.optuna_strategy`, :mod:`.evolution` (the strategies that
spend evaluations), :mod:`.trial_info` (what a submitted trial shows), :mod:`.analyze` (``analyze``),
:mod:`.export`.  Each imports torch/NNI on first use of the package.
"""
