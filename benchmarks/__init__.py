"""Benchmarks run by `nox -s bench`; each writes JSON under artifacts/bench/."""
