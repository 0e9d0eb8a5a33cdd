"""Tooling that runs beside Portlog rather than inside it (benchmarks)."""
