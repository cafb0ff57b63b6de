"""Privacy: differential privacy with its accountant, secure aggregation and the data pipeline."""
