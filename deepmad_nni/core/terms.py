"""Closed-form per-block terms, vectorised over candidate blocks: the solver's view of core/arch.py.

For one block (the first block of a stage, or a repeated one) with input ``c_in``, output ``c_out``,
kernel ``k``, middle width ``mid`` and input/output resolutions ``r_in``/``r_out`` this gives
``t`` = sum of log(w_l) over its main-path convs, ``n`` = number of main-path convs, ``macs`` and
``params`` (every conv, BatchNorm affine, SE biases; see core/score.py).  Arguments are numpy arrays
(broadcast together); ``tests/core/test_terms.py`` checks them against ``Stage.layers``.
"""
from __future__ import annotations

import numpy as np

from . import arch


def se_width(mid):
    """:func:`deepmad_nni.core.arch.se_width` over numpy arrays."""
    return arch.se_width(mid, maximum=np.maximum)


def block_terms(block: str, c_in, c_out, k, mid, stride, r_in, se=se_width):
    """(t, n, macs, params) of one block, as float arrays (``stride`` and ``r_in`` may be arrays too);
    ``se`` maps the mid width to the SE width."""
    c_in, c_out, k, mid = (np.asarray(x, dtype=np.float64) for x in (c_in, c_out, k, mid))
    r_out = -(-np.asarray(r_in) // stride)
    ri2, ro2 = np.asarray(r_in, dtype=np.float64) ** 2, np.asarray(r_out, dtype=np.float64) ** 2
    zero = np.zeros(np.broadcast(c_in, c_out, k, mid).shape)
    changes = (stride != 1) | (c_in != c_out)
    if block == "conv":
        t = np.log(c_in * k * k) + zero
        return t, 1.0 + zero, c_in * c_out * k * k * ro2 + zero, c_in * c_out * k * k + 2 * c_out + zero
    if block == "skip":
        on = changes + zero
        return (on * np.log(c_in) + zero, on, on * c_in * c_out * ro2, on * (c_in * c_out + 2 * c_out))
    if block == "basic":
        t = np.log(c_in * k * k) + np.log(c_out * k * k)
        macs = (c_in * c_out + c_out * c_out) * k * k * ro2
        params = (c_in * c_out + c_out * c_out) * k * k + 4 * c_out
        n = 2.0
    elif block == "bottleneck":
        t = np.log(c_in) + np.log(mid * k * k) + np.log(mid)
        macs = c_in * mid * ri2 + mid * mid * k * k * ro2 + mid * c_out * ro2
        params = c_in * mid + mid * mid * k * k + mid * c_out + 4 * mid + 2 * c_out
        n = 3.0
    elif block in ("mbconv", "mbconv_se"):
        t = np.log(c_in) + np.log(k * k) + np.log(mid)
        macs = c_in * mid * ri2 + mid * k * k * ro2 + mid * c_out * ro2
        params = c_in * mid + mid * k * k + mid * c_out + 4 * mid + 2 * c_out
        if block == "mbconv_se":
            se = se(mid)
            macs = macs + 2 * mid * se
            params = params + 2 * mid * se + se + mid
        return t + zero, 3.0 + zero, macs + zero, params + zero
    else:
        raise ValueError(f"Unknown block type {block!r}.")
    proj = changes & True
    macs = macs + proj * c_in * c_out * ro2
    params = params + proj * (c_in * c_out + 2 * c_out)
    return t + zero, n + zero, macs + zero, params + zero
