"""Tabular benchmarks: NAS-Bench-Macro, packaged (``data/``, Apache-2.0, see ``data/NOTICE``) or read from a
path the user gives."""
