"""Printing designs and results for the command line."""
from __future__ import annotations

import math

from ..core import Architecture, DesignResult, Score
from ..core.tinynas import to_structure

_BLOCK_NAMES = {"conv": "conv", "basic": "basic", "bottleneck": "bottleneck", "mbconv": "mbconv",
                "mbconv_se": "mbconv+se", "skip": "skip"}


def stage_table(arch: Architecture) -> str:
    rows = [("#", "block", "in", "out", "kernel", "stride", "depth", "mid (btn/expanded)")]
    for i, st in enumerate(arch.stages):
        mid = str(st.mid) if st.mid else "-"
        if st.block.startswith("mbconv"):
            mid += f" (x{st.mid / st.c_out:.3g} out)"
        rows.append((str(i), _BLOCK_NAMES[st.block], str(st.c_in), str(st.c_out), str(st.kernel), str(st.stride),
                     str(st.depth), mid))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows)


def figures(s: Score) -> str:
    return (f"entropy {s.entropy:.6g}   rho {s.effectiveness:.4f}   Q {s.q:.4g}   objective {s.objective:.6g}\n"
            f"FLOPs {s.flops / 1e6:.2f} M   params {s.params / 1e6:.3f} M   counted layers {s.num_layers}")


def print_design(result: DesignResult) -> None:
    print(f"status: {result.status}   {result.message}")
    for rank, design in enumerate(result.designs, 1):
        if len(result.designs) > 1:
            print(f"\n-- design {rank} of {len(result.designs)}")
        print(stage_table(design.architecture))
        print(figures(design.score))
    if result.designs:
        gap = "0" if result.status == "optimal" else f"{result.gap:.6g} ({result.relative_gap:.2%})"
        print(f"bound {result.bound:.6g}   gap {gap}   time {result.time_s:.3f} s")


def result_json(result: DesignResult) -> dict:
    d = result.to_dict()
    for k, v in list(d.items()):
        if isinstance(v, float) and not math.isfinite(v):
            d[k] = None
    return d


def score_json(arch: Architecture, s: Score) -> dict:
    return {"stages": to_structure(arch), "resolution": arch.resolution, "entropy": s.entropy,
            "stage_entropy": list(s.stage_entropy), "effectiveness": s.effectiveness, "q": s.q,
            "objective": s.objective, "flops": s.flops, "params": s.params, "num_layers": s.num_layers}
