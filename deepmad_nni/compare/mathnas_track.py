"""``mathnas`` in the comparison: :class:`deepmad_nni.nas.mathnas.MathNAS` on the NAS-Bench-Macro track.

It runs exactly as a user runs it, through the harness NNI's built-ins run through
(:func:`~.harness.run_nni_strategy`: ``SequentialExecutionEngine(max_model_count=N)``, the budget's ``Filter``,
the lookup evaluator), with the problem's FLOPs/params budgets and the benchmark's input (1, 3, 32, 32), at
which its profilers count like the filter's.  Its estimate evaluations are trained candidates and count in N
like every other evaluation (it evaluates only networks within the budget, so the filter rejects none).  The
benchmark track only: the training track's package spaces are counted by the core, not by NNI's profilers.
"""
from __future__ import annotations

from .harness import quiet_nni, run_nni_strategy
from .records import RunRecord

NAME = "mathnas"
INPUT_SIZE = (1, 3, 32, 32)


def mathnas_unavailable(problem) -> str:
    if getattr(problem, "track", None) != "nas-bench-macro":
        return "mathnas skipped: it runs on the nas-bench-macro track only (its costs come from NNI's profilers)."
    return ""


def make_mathnas(problem, seed: int, **settings):
    from ..nas.mathnas import MathNAS
    with quiet_nni():
        return MathNAS(flops=problem.budget.flops, params=problem.budget.params, input_size=INPUT_SIZE, seed=seed,
                       **settings)


def run_mathnas(problem, *, n_max: int, seed: int, name: str = NAME, **settings) -> RunRecord:
    """One run of MathNAS on ``problem``: up to ``n_max`` trained networks; its ILP time in the note."""
    strategy = make_mathnas(problem, seed, **settings)
    record = run_nni_strategy(problem, name, strategy, n_max=n_max, seed=seed)
    estimate = sum(e.phase == "estimate" for e in strategy.history)
    info = (f"{estimate} estimate evaluations, ILP {strategy.ilp_calls} solves in {strategy.ilp_seconds:.3f} s, "
            f"{strategy.cuts} cuts")
    record.note = info + (f"; {record.note}" if record.note else "")
    return record
