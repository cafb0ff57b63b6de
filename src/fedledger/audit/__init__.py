"""Audit: independent verification of tasks from chain events and blobs."""

from fedledger.audit.verify import Discrepancy, VerificationReport, verify_task

__all__ = ["Discrepancy", "VerificationReport", "verify_task"]
