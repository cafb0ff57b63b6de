"""Privacy layer: protections applied to what a member shares, on top of the learning layer.

Secure aggregation (``fedledger.privacy.secagg``: pairwise and self masks over the
fixed-point ring so the aggregator sees only the sum), an optional CKKS
homomorphic-encryption aggregation (``fedledger.privacy.he``, needs the ``he``
extra), and differential privacy with its accounting. Submodules are imported
explicitly; this package re-exports nothing so each one stays independent.
"""
