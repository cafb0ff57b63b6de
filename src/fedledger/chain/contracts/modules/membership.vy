# pragma version ~=0.4.3
"""
@title Task membership
@custom:contract-name membership
@notice A task's link to its consortium: who is a member and which roles it
        holds. Every role check of the task modules goes through here, so each
        external call to the registry is compiled once.
@dev Roles are the consortium's bit flags. The registry's answer is read at
     the time of each call: a member revoked mid-round loses its roles at once.
"""

from interfaces import IConsortium

ROLE_ADMIN: constant(uint256) = 1
ROLE_TRAINER: constant(uint256) = 2
ROLE_VALIDATOR: constant(uint256) = 4
ROLE_AGGREGATOR: constant(uint256) = 8
ROLE_AUDITOR: constant(uint256) = 16

# The consortium's bound on admitted addresses.
MAX_MEMBERS: constant(uint256) = 1024

consortium: public(IConsortium)


@deploy
def __init__(consortium: address):
    """
    @notice Link the task to `consortium`.
    @param consortium The Consortium contract whose members take part.
    """
    self.consortium = IConsortium(consortium)


@view
@internal
def _has_role(who: address, role: uint256) -> bool:
    """
    @notice Whether `who` is an active member holding `role`.
    @param who The address to check.
    @param role One role bit.
    @return True when it holds the role.
    """
    return staticcall self.consortium.has_role(who, role)


@view
@internal
def _is_active(who: address) -> bool:
    """
    @notice Whether `who` is an active member, whatever its roles.
    @param who The address to check.
    @return True when active.
    """
    return staticcall self.consortium.is_active(who)


@view
@internal
def _count_with_role(role: uint256) -> uint256:
    """
    @notice How many active members hold `role`.
    @param role One role bit.
    @return The count.
    """
    return staticcall self.consortium.count_with_role(role)


@view
@internal
def _member_count() -> uint256:
    """
    @notice How many addresses the consortium ever admitted (revoked ones included).
    @return The count, at most `MAX_MEMBERS`.
    """
    return staticcall self.consortium.member_count()


@view
@internal
def _member_at(index: uint256) -> address:
    """
    @notice The `index`-th admitted address, in admission order.
    @param index Position from 0, below `_member_count()`.
    @return The address.
    """
    return staticcall self.consortium.member_at(index)


@view
@internal
def _roles_of(who: address) -> uint256:
    """
    @notice The role bits `who` holds now (0 for a non-member or a revoked one).
    @param who The address to check.
    @return Its roles.
    """
    return staticcall self.consortium.roles_of(who)


@view
@internal
def _trainer_since(who: address) -> uint256:
    """
    @notice The block from which `who` has held the trainer role without a break.
    @param who The address to check.
    @return That block (0 when it is not an active trainer now).
    """
    return staticcall self.consortium.trainer_since(who)


@view
@internal
def _trainers_before(before_block: uint256) -> DynArray[address, MAX_MEMBERS]:
    """
    @notice The trainers since before `before_block` (the registry's `trainers_before`), in admission
            order, in one call.
    @param before_block A secure round's opening block.
    @return The trainers.
    """
    return staticcall self.consortium.trainers_before(before_block)


@view
@internal
def _kx_public_key(who: address) -> bytes32:
    """
    @notice The key-agreement public key `who` registered with the consortium.
    @param who A member.
    @return Its key (zero when none).
    """
    return (staticcall self.consortium.members(who)).kx_public_key
