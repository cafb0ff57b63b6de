"""``fedledger data``: vault commands."""
