"""Helpers the test modules share, importable as ``helpers`` from anywhere under tests/ (the root conftest puts
tests/ on ``sys.path``), so no test module imports another."""
