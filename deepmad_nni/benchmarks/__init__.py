"""Tabular benchmarks read from a path the user gives (never copied into the project)."""
