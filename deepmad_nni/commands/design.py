"""``deepmad-nni design``: solve the DeepMAD program for a paper preset or a family and budgets."""
from __future__ import annotations

import argparse
import json
import sys

from ..core import FAMILIES, PRESETS, get_family, get_preset, solve, to_structure
from ..core.score import CONVENTIONS
from .budget_args import add_budget_arguments, budgets_of
from .report import print_design, result_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()   # one of them is required, except with --explain
    src.add_argument("--preset", help=f"a paper design target: {', '.join(PRESETS)}")
    src.add_argument("--family", help=f"a search family: {', '.join(FAMILIES)}")
    p.add_argument("--flops", type=float, help="FLOPs (multiply-accumulates) budget, e.g. 4.1e9")
    p.add_argument("--params", type=float, help="parameter budget, e.g. 25.6e6")
    p.add_argument("--rho", type=float, help="effectiveness bound rho_0 (default: the preset's or family's)")
    p.add_argument("--alpha", type=float, nargs="+", help="stage weights alpha_i, one per stage")
    p.add_argument("--beta", type=float, default=10.0, help="depth-penalty weight beta (default 10)")
    p.add_argument("--convention", choices=list(CONVENTIONS), default="official",
                   help="entropy scale 1/2 and TinyNAS rules (official, default), the paper's Eq. 4 (paper), or "
                        "official with the TinyNAS code's SE quirk, log(r^2) = 0 from the first SE block on "
                        "(tinynas: its published scores)")
    p.add_argument("--top-k", type=int, default=1, help="number of distinct designs to return")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds to search for a better design and a tighter bound (default: the quick solve, "
                        "the rounded continuous relaxation and its bound, well under a second)")
    p.add_argument("--seed", type=int, default=0)
    add_budget_arguments(p)
    p.add_argument("--explain", action="store_true",
                   help="print the solver's plans (stages in order, their settings and time shares) and exit")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the result object as JSON")
    out.add_argument("--export", choices=["tinynas"], help="print the design in the official structure format")


def run(args) -> int:
    if args.explain:
        from ..core.plan import explain_all
        print(explain_all())
        return 0
    if not (args.preset or args.family):
        raise ValueError("design needs --preset or --family (or --explain), but got neither.")
    if args.preset:
        preset = get_preset(args.preset)
        family = get_family(preset.family)
        flops = preset.flops if args.flops is None else args.flops
        params = preset.params if args.params is None else args.params
        rho = preset.rho if args.rho is None else args.rho
    else:
        family = get_family(args.family)
        flops, params, rho = args.flops, args.params, args.rho
    if not (args.json or args.export):
        limit = "quick solve" if args.time_limit is None else f"up to {args.time_limit:g} s"
        print(f"Solving DeepMAD over {family.name} ({limit}) ...", file=sys.stderr)
    budgets = budgets_of(args)
    table = budgets.get("latency_table")
    result = solve(family, flops=flops, params=params, rho=rho, alpha=args.alpha, beta=args.beta,
                   convention=args.convention, top_k=args.top_k, time_limit=args.time_limit, seed=args.seed,
                   progress=lambda line: print(f"  {line}", file=sys.stderr), **budgets)
    if args.json:
        print(json.dumps(result_json(result), indent=2))
    elif args.export:
        if not result.designs:
            print(f"No design to export: {result.message}", file=sys.stderr)
            return 1
        print(json.dumps(to_structure(result.architecture), indent=1))
    else:
        print_design(result)
        for rank, (ms, fm) in enumerate(zip(getattr(result, "latencies", []), getattr(result, "feature_maps", [])), 1):
            lat = f"predicted latency {ms:.4g} ms" if ms is not None else "no latency table"
            print(f"design {rank}: {lat}   largest feature map {fm} elements")
        if table is not None:
            print(f"latency table: {table.describe()}")
    return 0 if result.designs else 1
