"""Identity: member keys in encrypted keystores."""

from fedledger.identity.keystore import Keystore, password_from_env_or_prompt

__all__ = ["Keystore", "password_from_env_or_prompt"]
