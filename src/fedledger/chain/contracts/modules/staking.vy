# pragma version ~=0.4.3
"""
@title Task stake gate
@custom:contract-name staking
@notice The contract a task asks whether a member deposited the stake its role needs (the task's
        Incentives contract), or none: a task without a gate asks nobody and requires no stake.
@dev Read at every check: a member whose stake is slashed below the requirement is refused at once.
"""

from interfaces import IStakeGate

# Immutable: a task's gate never changes, and reading it costs next to nothing in a task without one.
stake_gate: public(immutable(address))


@deploy
def __init__(gate: address):
    """
    @notice Record the task's stake gate.
    @param gate The gate (zero: no stake required).
    """
    stake_gate = gate


@view
@internal
def _staked(who: address, role: uint256) -> bool:
    """
    @notice Whether `who` may act in `role` as far as stake goes.
    @param who The member.
    @param role One role bit.
    @return True without a gate, otherwise the gate's answer.
    """
    if stake_gate == empty(address):
        return True
    return staticcall IStakeGate(stake_gate).is_staked(who, role)
