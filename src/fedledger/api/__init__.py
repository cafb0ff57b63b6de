"""REST API and dashboard over a workspace's ledger (``fedledger serve``): read only, for members signed in with
their key (EIP-4361) and for an auditor holding the server's auditor token."""

from fedledger.api.app import API_VERSION, STATIC_DIR, create_app
from fedledger.api.auth import siwe_message

__all__ = ["API_VERSION", "STATIC_DIR", "create_app", "siwe_message"]
