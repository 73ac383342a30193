"""Shape formulas NNI 3.0's profilers lack for its own DARTS-style cell spaces (a compatibility shim).

NNI's DARTS cells merge a node's inputs with ``torch.sum(torch.stack(...), 0)`` and ``FactorizedReduce``
pads with ``nn.ConstantPad2d``; NNI 3.0 has no shape inference formula for ``aten.stack``,
``aten.sum.dim_IntList`` or ``ConstantPad2d``, so ``FlopsProfiler`` fails on ``nni.nas.hub.pytorch.DARTS``.
:func:`register_missing` adds formulas for those three, and only where NNI has none.  Its shape inference
also logs a warning per op, and the one for InputChoice is a malformed logging call (a "Logging error"
traceback each time): :func:`quiet_shape_inference` keeps those loggers at ERROR meanwhile.
"""
from __future__ import annotations

import logging

from deepmad_nni.log_levels import loggers_at

_SHAPE_LOGGERS = ("nni.nas.profiler.pytorch.utils.shape", "nni.nas.profiler.pytorch.utils.shape_formula")


def _stack(fn, tensors, dim=0, **kwargs):
    from nni.nas.profiler.pytorch.utils.shape import MutableShape
    shape = list(next(t.real_shape for t in tensors if t.real_shape is not None))
    shape.insert(dim if dim >= 0 else dim + len(shape) + 1, len(tensors))
    return MutableShape(*shape)


def _constant_pad(module, x):
    from nni.nas.profiler.pytorch.utils.shape import MutableShape
    shape, pad = list(x.real_shape), module.padding     # (left, right, top, bottom, ...) from the last dim
    for i in range(len(pad) // 2):
        shape[-1 - i] = shape[-1 - i] + pad[2 * i] + pad[2 * i + 1]
    return MutableShape(*shape)


def register_missing() -> list:
    """Register the formulas NNI lacks (module docstring); returns what was added (empty when nothing was)."""
    import torch
    from nni.nas.profiler.pytorch.utils import shape_formula as sf
    wanted = {torch.ops.aten.stack.default: _stack, torch.ops.aten.sum.dim_IntList: sf.aten_mean_dim,
              torch.nn.ConstantPad2d: _constant_pad}
    added = [k for k in wanted if sf.find_shape_inference_formula(k) is None]
    for k in added:
        sf.register_shape_inference_formula(k, wanted[k])
    return added


def quiet_shape_inference():
    """NNI's shape-inference loggers at ERROR for the duration of a ``with`` block (module docstring)."""
    return loggers_at(_SHAPE_LOGGERS, logging.ERROR)
