"""Heart-disease FedAvg on Flower's deployment runtime: the baseline of benchmarks/consortium.py."""
