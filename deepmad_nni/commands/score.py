"""``deepmad-nni score FILE``: DeepMAD's figures of a given architecture (official structure format)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core import from_structure, parse_structure_text, score
from ..core.score import CONVENTIONS
from .report import figures, score_json, stage_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a structure file: a list of stage dicts (class, in, out, s, k, L, btn) as JSON "
                                "or a Python literal, or a dict with 'best_structures' (published model files)")
    p.add_argument("--format", choices=["tinynas"], default="tinynas", help="input format (default tinynas)")
    p.add_argument("--resolution", type=int, default=224, help="input resolution (default 224)")
    p.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (default 1000)")
    p.add_argument("--alpha", type=float, nargs="+", help="stage weights (default 1, ..., 1, 8)")
    p.add_argument("--beta", type=float, default=10.0)
    p.add_argument("--convention", choices=list(CONVENTIONS), default="official",
                   help="official (default), paper, or tinynas (official with the TinyNAS code's SE quirk: "
                        "the scores it published)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"file must be an existing structure file, but {str(path)!r} does not exist.")
    if args.resolution < 1:
        raise ValueError(f"resolution must be a positive integer, but got {args.resolution}.")
    arch = from_structure(parse_structure_text(path.read_text()), resolution=args.resolution,
                          num_classes=args.num_classes)
    s = score(arch, alpha=args.alpha, beta=args.beta, convention=args.convention)
    if args.json:
        print(json.dumps(score_json(arch, s), indent=2))
    else:
        print(stage_table(arch))
        print(figures(s))
    return 0
