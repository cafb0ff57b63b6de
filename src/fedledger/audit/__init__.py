"""Audit: independent verification of tasks from chain events and blobs."""

from fedledger.audit.batches import BatchAudit, audit_batches
from fedledger.audit.discrepancy import Discrepancy
from fedledger.audit.incentives import TRUSTED, PayoutAudit, audit_payouts
from fedledger.audit.verify import VerificationReport, verify_task

__all__ = [
    "TRUSTED",
    "BatchAudit",
    "Discrepancy",
    "PayoutAudit",
    "VerificationReport",
    "audit_batches",
    "audit_payouts",
    "verify_task",
]
