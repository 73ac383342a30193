"""Evaluators that do nothing heavy, for wiring checks and benchmark-free runs (importable by NNI trials)."""
from __future__ import annotations


def report_params(model) -> None:
    """Report the model's parameter count ``sum(p.numel())`` as its final metric."""
    import nni
    nni.report_final_result(float(sum(p.numel() for p in model.parameters())))
