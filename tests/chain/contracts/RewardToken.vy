# pragma version ~=0.4.3
"""
@title Reward token for the incentive tests
@notice snekmate's ERC-20, as a deployable contract: the deployer owns it and may mint.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
def __init__():
    """
    @notice Create the token; the deployer is its owner and a minter.
    """
    ownable.__init__()
    erc20.__init__("Reward", "RWD", 18, "Reward", "1")
