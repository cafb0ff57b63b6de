"""fedledger: privacy-preserving, verifiable federated learning coordinated by smart contracts."""

from fedledger.exceptions import FedLedgerError

__all__ = ["FedLedgerError", "__version__"]
__version__ = "0.1.0"
