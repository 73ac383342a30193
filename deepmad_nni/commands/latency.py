"""``deepmad-nni latency profile``: measure a latency table of a family's units on this machine."""
from __future__ import annotations

import argparse
import sys

from ..core import FAMILIES, get_family
from ..core.latency_units import family_units


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="latency_command", metavar="ACTION")
    sub.required = True
    prof = sub.add_parser("profile", help="time every unit (conv+BN+act, SE, residual add, head) a family can run",
                          description="Time every unit a family's designs can run, on this machine; the table is "
                                      "written as it grows and a rerun resumes it (docs/latency.md).")
    prof.add_argument("--family", required=True, help=f"a search family: {', '.join(FAMILIES)}")
    prof.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    prof.add_argument("--batch-size", type=int, default=1, help="batch size of the timed inputs (default 1)")
    prof.add_argument("--out", required=True, help="the table file (JSON); an existing one for the same settings "
                                                   "is resumed")
    prof.add_argument("--threads", type=int, default=1, help="torch intra-op threads, pinned (default 1)")
    prof.add_argument("--repeats", type=int, default=10, help="timings per unit; the median is kept (default 10)")
    prof.add_argument("--warmup", type=int, default=3, help="untimed calls before timing (default 3)")
    prof.add_argument("--flops", type=float, default=None,
                      help="profile only units of at most this many MACs (designs within this FLOPs budget "
                           "need no other); default: every unit")
    prof.add_argument("--dry-run", action="store_true", help="count the units and their MACs, measure nothing")


def _check(name: str, value, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, but got {value!r}.")


def run(args) -> int:
    try:
        family = get_family(args.family)
    except ValueError as err:
        raise ValueError(f"--family: {err}") from None
    _check("--batch-size", args.batch_size, 1)
    _check("--threads", args.threads, 1)
    _check("--repeats", args.repeats, 1)
    _check("--warmup", args.warmup, 0)
    if args.flops is not None and not args.flops > 0:
        raise ValueError(f"--flops must be a positive number of MACs, but got {args.flops!r}.")
    units = family_units(family, max_macs=args.flops)
    if args.dry_run:
        print(f"{family.name}: {len(units)} units, {sum(u.macs for u in units):.4g} MACs in all"
              + (f" (units of at most {args.flops:.4g} MACs)" if args.flops else ""))
        return 0
    from ..latency_profile import profile, settings_of
    try:
        settings = settings_of(device=args.device, batch_size=args.batch_size, threads=args.threads)
    except ValueError as err:
        raise ValueError(f"--device {args.device}: {err}") if "cuda" in str(err) else err
    try:
        table = profile(units, args.out, settings=settings, warmup=args.warmup, repeats=args.repeats,
                        coverage={family.name: args.flops})
    except KeyboardInterrupt:
        print(f"progress saved in {args.out}; rerun the same command to resume", file=sys.stderr)
        raise
    print(f"{args.out}: {len(table)} entries ({table.describe()}), measured in "
          f"{table.settings.get('measured_s', 0.0):.1f} s")
    return 0
