"""DeepMAD on NNI 3.0 model spaces: the space reader, the ``DeepMAD`` strategy, ``analyze`` and exports.

Modules: :mod:`.reader` (space -> description), :mod:`.trace` (dataflow dry run), :mod:`.solver` (program over
a description), :mod:`.adapters` (space -> core Family or reader), :mod:`.strategy` (``DeepMAD``),
:mod:`.analyze` (``analyze``), :mod:`.export`.  Each imports torch/NNI on first use of the package.
"""
