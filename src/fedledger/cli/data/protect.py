"""``fedledger data``: protect commands."""
