"""``deepmad-nni latency profile``: measure a latency table of a family's or a read space's units on this machine."""
from __future__ import annotations

import argparse
import sys

from ..core import FAMILIES, get_family
from ..core.latency_units import family_units


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="latency_command", metavar="ACTION")
    sub.required = True
    prof = sub.add_parser("profile", help="time every unit (conv+BN+act, SE, residual add, head) a family or an NNI "
                                          "model space can run",
                          description="Time every unit a family's designs or an NNI model space's samples can run, "
                                      "on this machine; the table is written as it grows and a rerun resumes it "
                                      "(docs/latency.md).")
    what = prof.add_mutually_exclusive_group(required=True)
    what.add_argument("--family", help=f"a search family: {', '.join(FAMILIES)}")
    what.add_argument("--space", help="module:attribute naming an NNI ModelSpace or a zero-argument callable "
                                      "returning one (e.g. nni.nas.hub.pytorch:MobileNetV3Space), read by the reader")
    prof.add_argument("--input-size", type=int, nargs=4, metavar=("N", "C", "H", "W"), default=None,
                      help="with --space: the input the space is read at (default 1 3 224 224, or the space's "
                           "config.resolution); N is the batch size")
    prof.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    prof.add_argument("--batch-size", type=int, default=None, help="batch size of the timed inputs (default 1; with "
                                                                   "--input-size, its N)")
    prof.add_argument("--out", required=True, help="the table file (JSON); an existing one for the same settings "
                                                   "is resumed")
    prof.add_argument("--threads", type=int, default=1, help="torch intra-op threads, pinned (default 1)")
    prof.add_argument("--repeats", type=int, default=10, help="timings per unit; the median is kept (default 10)")
    prof.add_argument("--warmup", type=int, default=3, help="untimed calls before timing (default 3)")
    prof.add_argument("--flops", type=float, default=None,
                      help="with --family: profile only units of at most this many MACs (designs within this FLOPs "
                           "budget need no other); default: every unit")
    prof.add_argument("--calibrate", type=int, default=10,
                      help="networks measured end to end to calibrate the table (a space, or a family with --flops; "
                           "default 10, 0: none; docs/latency.md)")
    prof.add_argument("--dry-run", action="store_true", help="count the units and their MACs, measure nothing")


def _check(name: str, value, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, but got {value!r}.")


def _family(args):
    """The family of ``--family`` (its options checked)."""
    try:
        family = get_family(args.family)
    except ValueError as err:
        raise ValueError(f"--family: {err}") from None
    if args.input_size is not None:
        raise ValueError(f"--input-size applies to --space only (family {family.name!r} has its own input), but got "
                         f"{' '.join(map(str, args.input_size))}.")
    if args.flops is not None and not args.flops > 0:
        raise ValueError(f"--flops must be a positive number of MACs, but got {args.flops!r}.")
    return family


def _space(args):
    """(space, its SpaceUnits) of ``--space`` read at ``--input-size`` (its options checked)."""
    if args.flops is not None:
        raise ValueError(f"--flops applies to --family only (a read space is profiled whole), but got {args.flops!r}.")
    size = args.input_size
    if size is not None:
        if min(size) < 1:
            raise ValueError(f"--input-size must be four positive integers N C H W, but got "
                             f"{' '.join(map(str, size))}.")
        if args.batch_size is not None and args.batch_size != size[0]:
            raise ValueError(f"--batch-size must equal --input-size's N ({size[0]}), but got {args.batch_size}.")
        args.batch_size = size[0]
    from ..nas.reader import read_space
    from ..nas.space_units import SpaceUnits
    from ..optuna_loop._tune import load_space
    space = load_space(args.space, argument="--space")
    try:
        return space, SpaceUnits(space, read_space(space, size))
    except ValueError as err:     # UnsupportedModuleError included
        raise ValueError(f"--space {args.space}: {err}") from None


def run(args) -> int:
    if args.batch_size is not None:
        _check("--batch-size", args.batch_size, 1)
    _check("--threads", args.threads, 1)
    _check("--repeats", args.repeats, 1)
    _check("--warmup", args.warmup, 0)
    _check("--calibrate", args.calibrate, 0)
    if args.space is not None:
        space, units = _space(args)
        name, bound, listed = units.space_id, None, units.units()
    else:
        family = _family(args)
        name, bound, listed = family.name, args.flops, family_units(family, max_macs=args.flops)
    if args.dry_run:
        print(f"{name}: {len(listed)} units, {sum(u.macs for u in listed):.4g} MACs in all"
              + (f" (units of at most {bound:.4g} MACs)" if bound else ""))
        return 0
    from ..latency_profile import profile_family, profile_space, settings_of
    kw = dict(device=args.device, batch_size=args.batch_size or 1, threads=args.threads, warmup=args.warmup,
              repeats=args.repeats, calibrate=args.calibrate)
    try:
        settings_of(device=args.device, batch_size=kw["batch_size"], threads=args.threads)
    except ValueError as err:
        raise ValueError(f"--device {args.device}: {err}") if "cuda" in str(err) else err
    try:
        if args.space is not None:
            table = profile_space(units, args.out, space=space, **kw)
        else:
            table = profile_family(family, args.out, max_macs=args.flops, **kw)
    except KeyboardInterrupt:
        print(f"progress saved in {args.out}; rerun the same command to resume", file=sys.stderr)
        raise
    fitted = table.settings.get("calibration")
    print(f"{args.out}: {len(table)} entries ({table.describe()}), measured in "
          f"{table.settings.get('measured_s', 0.0):.1f} s"
          + (f"; calibrated on {fitted['networks']} networks (margin {100 * fitted['margin']:.1f}%)" if fitted else ""))
    return 0
