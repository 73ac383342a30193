"""The ``deepmad-nni`` command line: ``design``, ``score``, ``tune``, ``compare``, ``latency``."""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "design": "Solve the DeepMAD program for a preset or a family and budgets.",
    "score": "DeepMAD's figures (entropy, rho, Q, FLOPs, params) of a given architecture.",
    "tune": "Tune rho_0, alpha and beta with Optuna against real evaluations.",
    "compare": "Compare DeepMAD with NNI's built-in strategies (quality and GPU-hours).",
    "latency": "Measure a latency table of a family's units on this machine (for design --latency).",
}


def build_parser(selected=None) -> argparse.ArgumentParser:
    """The parser; only the ``selected`` command's module is imported (all when None)."""
    parser = argparse.ArgumentParser(prog="deepmad-nni", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if selected is not None and name != selected:
            continue
        try:
            module = importlib.import_module(f"deepmad_nni.commands.{name}")
        except ImportError as err:  # an optional dependency of that command is missing
            p.set_defaults(_missing=f"deepmad-nni {name} is unavailable: {err}")
            continue
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(selected if selected in COMMANDS else None).parse_args(argv)
    if getattr(args, "_missing", None):
        print(args._missing, file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except ValueError as err:
        print(f"deepmad-nni {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print(f"deepmad-nni {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
