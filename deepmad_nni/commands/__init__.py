"""Subcommands of ``deepmad-nni``: each module defines ``add_arguments(parser)`` and ``run(args) -> int``."""
