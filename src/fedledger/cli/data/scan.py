"""``fedledger data``: scan commands."""
