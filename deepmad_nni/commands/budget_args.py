"""The device-budget options ``design`` and ``tune`` share: ``--latency``, ``--latency-table``, ``--max-feature-map``."""
from __future__ import annotations

import argparse


def add_budget_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latency", type=float, default=None,
                   help="latency budget in ms, predicted by --latency-table (docs/latency.md)")
    p.add_argument("--latency-table", default=None,
                   help="a table from deepmad-nni latency profile; reports each design's predicted latency")
    p.add_argument("--max-feature-map", type=float, default=None,
                   help="budget on the largest block input/output tensor, in elements per sample")


def budgets_of(args) -> dict:
    """``latency`` / ``latency_table`` (loaded) / ``max_feature_map`` as the solvers take them; {} when none is
    given.  A ValueError names the option."""
    if args.latency is not None and args.latency_table is None:
        raise ValueError(f"--latency needs --latency-table (a table from deepmad-nni latency profile), but got "
                         f"--latency {args.latency:g} alone.")
    for name, value in (("--latency", args.latency), ("--max-feature-map", args.max_feature_map)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number, but got {value!r}.")
    table = None
    if args.latency_table is not None:
        from ..core.latency import LatencyTable
        try:
            table = LatencyTable.load(args.latency_table)
        except ValueError as err:
            raise ValueError(f"--latency-table: {err}") from None
    if table is None and args.max_feature_map is None:
        return {}
    return {"latency": args.latency, "latency_table": table, "max_feature_map": args.max_feature_map}
