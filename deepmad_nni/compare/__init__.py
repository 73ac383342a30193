"""Compare DeepMAD with NNI's built-in strategies: quality found and search cost in GPU-hours.

See docs/compare.md.  ``compare(...)`` (in :mod:`.runner`) runs the comparison; the pieces: ``CostModel``
(GPU time of a fully trained candidate), ``Budget``, the problems of the two tracks, the harness that runs
one strategy on one problem, the run store (resumption) and the reports (CSV, markdown, PNG).
"""
from .cost import CostModel
from .harness import Budget, run_deepmad, run_nni_strategy
from .records import Candidate, RunRecord, RunStore, summarize

__all__ = ["CostModel", "Budget", "run_deepmad", "run_nni_strategy", "Candidate", "RunRecord", "RunStore",
           "summarize"]
