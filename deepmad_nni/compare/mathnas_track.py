"""``mathnas`` in the comparison: :class:`deepmad_nni.nas.mathnas.MathNAS` on the NAS-Bench-Macro space.

It runs exactly as a user runs it, through the harness NNI's built-ins run through
(:func:`~.harness.run_nni_strategy`: ``SequentialExecutionEngine(max_model_count=N)``, the budget's ``Filter``,
the problem's evaluator), with the problem's FLOPs/params budgets and the input the problem counts at: the
benchmark's (1, 3, 32, 32) on the benchmark track, the dataset's (1, C, r, r) on the training track, where
the space's FLOPs/params are NNI's profiler counts at that input too (NAS-Bench-Macro and SPACH there).  Its
estimate evaluations are trained candidates and count in N like every other evaluation (it evaluates only
networks within the budget, so the filter rejects none).  Not on the training track's package spaces: those are counted by the core, not by
NNI's profilers, so MathNAS's costs would not be the problem's.
"""
from __future__ import annotations

from .harness import quiet_nni, run_nni_strategy
from .records import RunRecord

NAME = "mathnas"
INPUT_SIZE = (1, 3, 32, 32)


def input_size(problem) -> tuple | None:
    """The input at which ``problem`` counts FLOPs/params with NNI's profilers; None when it uses the core's."""
    if getattr(problem, "track", None) == "nas-bench-macro":
        return INPUT_SIZE
    return getattr(problem, "profiler_input_size", None)  # training track: NAS-Bench-Macro, SPACH


def mathnas_unavailable(problem) -> str:
    if input_size(problem) is None:
        return ("mathnas skipped: it runs where the problem's FLOPs/params are NNI's profiler counts "
                "(NAS-Bench-Macro on either track, SPACH on the training track); this space's are counted by the "
                "core, MathNAS's by NNI's profilers.")
    return ""


def make_mathnas(problem, seed: int, **settings):
    from ..nas.mathnas import MathNAS
    with quiet_nni():
        return MathNAS(flops=problem.budget.flops, params=problem.budget.params, input_size=input_size(problem),
                       seed=seed, **settings)


def run_mathnas(problem, *, n_max: int, seed: int, name: str = NAME, **settings) -> RunRecord:
    """One run of MathNAS on ``problem``: up to ``n_max`` trained networks; its ILP time in the note."""
    strategy = make_mathnas(problem, seed, **settings)
    record = run_nni_strategy(problem, name, strategy, n_max=n_max, seed=seed)
    estimate = sum(e.phase == "estimate" for e in strategy.history)
    info = (f"{estimate} estimate evaluations, ILP {strategy.ilp_calls} solves in {strategy.ilp_seconds:.3f} s, "
            f"{strategy.cuts} cuts")
    record.note = info + (f"; {record.note}" if record.note else "")
    return record
