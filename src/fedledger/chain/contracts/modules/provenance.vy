# pragma version ~=0.4.3
"""
@title Commitment provenance
@custom:contract-name provenance
@notice What a task checks about the data behind each commitment: purpose
        limitation (GDPR Art. 5(1)(b)) through the data registry, and a
        cumulative privacy budget.
@dev With a `data_registry`, every commitment names the dataset it was
     trained on, which must be the committer's own and allow the task's
     `purpose`; with a `privacy_budget`, every commitment declares the
     committer's cumulative privacy spend, which never decreases and never
     exceeds the budget.
"""

from interfaces import IDataRegistry

# Dataset registry (zero: no dataset checks) and keccak256 of the purpose name.
data_registry: public(IDataRegistry)
purpose: public(bytes32)
# Privacy budget in micro-epsilon (0: no DP) and each member's latest declared spend.
privacy_budget: public(uint256)
privacy_spent: public(HashMap[address, uint256])


@deploy
def __init__(data_registry: address, purpose: bytes32, privacy_budget: uint256):
    """
    @notice Record the task's provenance rules.
    @param data_registry DataRegistry checking each commitment's dataset; zero for no dataset checks.
    @param purpose keccak256 of the task's canonical purpose name (as DataRegistry stores purposes).
    @param privacy_budget Cumulative epsilon a member may declare, in micro-epsilon; 0 for a task without DP.
    """
    assert data_registry == empty(address) or purpose != empty(bytes32), "task: zero purpose"
    self.data_registry = IDataRegistry(data_registry)
    self.purpose = purpose
    self.privacy_budget = privacy_budget


@internal
def _check(member: address, dataset_id: uint256, epsilon_micro: uint256):
    """
    @notice Check a commitment's provenance and record the committer's declared spend.
    @dev `allows` is false for unknown and revoked datasets. Declared spends are
         cumulative, so they never decrease.
    @param member The committer (the caller, or a trainer whose batched leaf is delivered).
    @param dataset_id The dataset the update was trained on (checked with a registry).
    @param epsilon_micro The member's cumulative spend after this update (checked with a budget).
    """
    if self.data_registry.address != empty(address):
        assert staticcall self.data_registry.owner_of(dataset_id) == member, "task: dataset not owned by sender"
        assert staticcall self.data_registry.allows(dataset_id, self.purpose), "task: purpose not allowed for dataset"
    if self.privacy_budget != 0:
        assert epsilon_micro <= self.privacy_budget, "task: privacy budget exceeded"
        assert epsilon_micro >= self.privacy_spent[member], "task: privacy spend decreased"
        self.privacy_spent[member] = epsilon_micro
