"""``analyze(module, input_size)``: DeepMAD's figures of any torch CNN, from its real dataflow.

The main path, the roles of the other convs (residual projection, gate such as SE, classifier after the
global pool) and the stages come from one dry run (:mod:`deepmad_nni.nas.trace`), not from module names;
FLOPs and params from NNI's per-module formulas under the core's conventions (MACs of convs and linear
layers; ``sum(p.numel())``).  Works on plain ``nn.Module`` networks and on frozen NNI models.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Analysis:
    """``layers``: one dict per conv (name, role, stage, c_in, c_out, kernel, groups, stride, out_hw);
    ``entropy`` = sum_i alpha_i H_i, ``effectiveness`` = rho, ``q``, ``objective``, ``flops``, ``params``."""

    layers: list
    entropy: float
    stage_entropy: tuple
    effectiveness: float
    q: float
    objective: float
    flops: float
    params: float
    num_layers: int
    num_stages: int

    def main_layers(self) -> list:
        return [row for row in self.layers if row["role"] == "main"]


def analyze(module, input_size=(1, 3, 224, 224), *, alpha=None, beta: float = 10.0,
            convention: str = "official") -> Analysis:
    """Analyse ``module`` on inputs of ``input_size`` (N, C, H, W); see :class:`Analysis`.

    Raises :class:`~deepmad_nni.nas.trace.UnsupportedModuleError` (a ValueError) naming the module the
    analysis cannot reason about (attention, matmul, dilated or functional convs).
    """
    import torch
    from .reader import read_space
    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, but got {type(module).__name__}.")
    was_training = module.training
    module.eval()
    try:
        desc = read_space(module, input_size)
    finally:
        module.train(was_training)
    if desc.mutables:
        raise ValueError(f"analyze needs a fixed network, but the module has choices {sorted(desc.mutables)}; "
                         "freeze a sample first or use deepmad_nni.nas.reader.read_space.")
    e = desc.evaluate({}, alpha=alpha, beta=beta, convention=convention)
    rows = [r for r in desc.table({}) if r.pop("active")]
    for r in rows:
        r.pop("condition", None)
    return Analysis(rows, e.entropy, e.stage_entropy, e.effectiveness, e.q, e.objective, e.flops, e.params,
                    e.num_layers, desc.num_stages)
