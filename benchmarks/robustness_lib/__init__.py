"""Pieces of ``benchmarks/robustness.py``: data, models, the round simulation and the report."""
