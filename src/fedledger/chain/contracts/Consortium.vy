# pragma version ~=0.4.3
"""
@title fedledger consortium registry and governance
@notice Who may take part in a federation, with which roles, and how that
        changes: every admission, role change, revocation and threshold change
        is an M-of-N admin proposal. The same votes govern the consortium's
        contracts (a proposal carrying a call that executes on approval) and
        release model versions. Holds public metadata only (certificate
        fingerprint, key-agreement public key, store URI), never personal data.
@dev Roles are a bit set so one member can hold several. A revoked address can
     never be re-admitted: a revoked key is presumed compromised, so the
     organization joins again with a new key.
"""

from interfaces import IConsortium

implements: IConsortium

# Roles (bit flags).
ROLE_ADMIN: constant(uint256) = 1
ROLE_TRAINER: constant(uint256) = 2
ROLE_VALIDATOR: constant(uint256) = 4
ROLE_AGGREGATOR: constant(uint256) = 8
ROLE_AUDITOR: constant(uint256) = 16
ALL_ROLES: constant(uint256) = 31

# Member status.
STATUS_NONE: constant(uint8) = 0
STATUS_ACTIVE: constant(uint8) = 1
STATUS_REVOKED: constant(uint8) = 2

# Proposal kinds.
KIND_ADMIT: constant(uint8) = 1
KIND_SET_ROLES: constant(uint8) = 2
KIND_REVOKE: constant(uint8) = 3
KIND_SET_THRESHOLD: constant(uint8) = 4
KIND_CALL: constant(uint8) = 5
KIND_RELEASE: constant(uint8) = 6

MAX_MEMBERS: constant(uint256) = 1024
# The most addresses one `trainer_listings` call asks about (a member's neighbourhood in a secure round).
MAX_LISTINGS: constant(uint256) = 128
MAX_APPROVERS: constant(uint256) = 64
# Room for a governed function's selector and a few ABI words: governed setters take scalars.
MAX_PAYLOAD: constant(uint256) = 260


# What a contract governed by this consortium answers (the task contracts).
interface IGoverned:
    def consortium() -> address: view
    def check_governed_call(payload: Bytes[MAX_PAYLOAD]) -> bool: view
    def model_at(round_id: uint256) -> bytes32: view


struct Proposal:
    kind: uint8
    target: address
    roles: uint256
    threshold: uint256
    org: String[64]
    cert_fingerprint: bytes32
    kx_public_key: bytes32
    store_uri: String[256]
    proposer: address
    approvals: uint256
    executed: bool
    cancelled: bool


# The member record is the interface's, so `implements` checks the `members` getter other contracts read.
members: public(HashMap[address, IConsortium.Member])
member_list: DynArray[address, MAX_MEMBERS]
# The block from which each member has held the trainer role without a break (0: not a trainer now). A secure
# round lists the trainers of before its opening block from this one word each, so opening a round stores nothing
# per trainer, and a trainer admitted, or given the role again, after a round opened is not in it.
trainer_since: public(HashMap[address, uint256])
admin_count: public(uint256)
threshold: public(uint256)

proposals: public(HashMap[uint256, Proposal])
proposal_count: public(uint256)
has_approved: public(HashMap[uint256, HashMap[address, bool]])
approvers: HashMap[uint256, DynArray[address, MAX_APPROVERS]]
# A call proposal's calldata; a release proposal's abi-encoded (round, model hash).
proposal_payload: public(HashMap[uint256, Bytes[MAX_PAYLOAD]])
# Block at which a task's model version was released by vote (0: not released).
released_at: public(HashMap[address, HashMap[bytes32, uint256]])


event MemberAdmitted:
    member: indexed(address)
    org: String[64]
    roles: uint256
    proposal_id: uint256

event RolesChanged:
    member: indexed(address)
    old_roles: uint256
    new_roles: uint256
    proposal_id: uint256

event MemberRevoked:
    member: indexed(address)
    proposal_id: uint256

event ThresholdChanged:
    old_threshold: uint256
    new_threshold: uint256
    proposal_id: uint256

event MetadataUpdated:
    member: indexed(address)
    cert_fingerprint: bytes32
    kx_public_key: bytes32
    store_uri: String[256]

event CallExecuted:
    proposal_id: indexed(uint256)
    target: indexed(address)
    selector: bytes4

event ModelReleased:
    task: indexed(address)
    round_id: uint256
    model_hash: bytes32
    proposal_id: uint256

event ProposalCreated:
    proposal_id: indexed(uint256)
    kind: uint8
    target: indexed(address)
    proposer: address

event ProposalApproved:
    proposal_id: indexed(uint256)
    admin: indexed(address)
    approvals: uint256

event ProposalCancelled:
    proposal_id: indexed(uint256)
    admin: indexed(address)


@deploy
def __init__(
    org: String[64],
    roles: uint256,
    cert_fingerprint: bytes32,
    kx_public_key: bytes32,
    store_uri: String[256],
):
    """
    @notice Found a consortium; the deployer is its first admin and the
            approval threshold starts at one.
    @param org The founder's organization name.
    @param roles The founder's roles; must include ROLE_ADMIN.
    @param cert_fingerprint SHA-256 fingerprint of the founder's certificate.
    @param kx_public_key The founder's X25519 key-agreement public key.
    @param store_uri Where the founder publishes blobs.
    """
    assert roles & ROLE_ADMIN != 0, "consortium: founder must be an admin"
    assert roles & ~ALL_ROLES == 0, "consortium: unknown role"
    assert len(org) > 0, "consortium: empty organization name"
    self.threshold = 1
    self._admit(msg.sender, org, roles, cert_fingerprint, kx_public_key, store_uri, 0)


@external
def propose_admit(
    member: address,
    org: String[64],
    roles: uint256,
    cert_fingerprint: bytes32,
    kx_public_key: bytes32,
    store_uri: String[256],
) -> uint256:
    """
    @notice Propose admitting `member`; the proposer's approval counts.
    @param member The address to admit (never known before).
    @param org Its organization's name.
    @param roles Its role bits (at least one).
    @param cert_fingerprint Hash of its organization certificate.
    @param kx_public_key Its key-agreement public key (secure aggregation).
    @param store_uri Where its published blobs are.
    @return The proposal id.
    """
    self._check_admin(msg.sender)
    assert member != empty(address), "consortium: zero address"
    assert self.members[member].status == STATUS_NONE, "consortium: address already known"
    assert roles != 0, "consortium: no roles"
    assert roles & ~ALL_ROLES == 0, "consortium: unknown role"
    assert len(org) > 0, "consortium: empty organization name"
    return self._propose(
        Proposal(
            kind=KIND_ADMIT,
            target=member,
            roles=roles,
            threshold=0,
            org=org,
            cert_fingerprint=cert_fingerprint,
            kx_public_key=kx_public_key,
            store_uri=store_uri,
            proposer=msg.sender,
            approvals=0,
            executed=False,
            cancelled=False,
        )
    )


@external
def propose_roles(member: address, roles: uint256) -> uint256:
    """
    @notice Propose replacing an active member's roles.
    @param member The member.
    @param roles Its new role bits.
    @return The proposal id.
    """
    self._check_admin(msg.sender)
    assert self.members[member].status == STATUS_ACTIVE, "consortium: not an active member"
    assert roles != 0, "consortium: no roles"
    assert roles & ~ALL_ROLES == 0, "consortium: unknown role"
    return self._propose(self._simple_proposal(KIND_SET_ROLES, member, roles, 0))


@external
def propose_revoke(member: address) -> uint256:
    """
    @notice Propose revoking an active member for good.
    @param member The member.
    @return The proposal id.
    """
    self._check_admin(msg.sender)
    assert self.members[member].status == STATUS_ACTIVE, "consortium: not an active member"
    return self._propose(self._simple_proposal(KIND_REVOKE, member, 0, 0))


@external
def propose_threshold(new_threshold: uint256) -> uint256:
    """
    @notice Propose a new number of admin approvals needed to execute.
    @param new_threshold The approvals needed (1..admin count).
    @return The proposal id.
    """
    self._check_admin(msg.sender)
    assert new_threshold >= 1, "consortium: threshold must be at least 1"
    assert new_threshold <= self.admin_count, "consortium: threshold above admin count"
    return self._propose(self._simple_proposal(KIND_SET_THRESHOLD, empty(address), 0, new_threshold))


@external
def propose_call(target: address, payload: Bytes[MAX_PAYLOAD]) -> uint256:
    """
    @notice Propose calling a contract this consortium governs; the call executes on approval.
    @dev The target vets the call first (`check_governed_call`), so a call it would refuse, such as
         a parameter outside the bounds it declared mutable, is refused now with the target's own
         reason instead of failing admins' approvals later.
    @param target A contract whose `consortium()` is this one.
    @param payload The calldata: a function selector and its ABI-encoded arguments.
    @return The proposal id.
    """
    self._check_admin(msg.sender)
    assert target.is_contract, "consortium: target is not a contract"
    assert len(payload) >= 4, "consortium: payload has no function selector"
    assert staticcall IGoverned(target).consortium() == self, "consortium: target is not governed by this consortium"
    assert staticcall IGoverned(target).check_governed_call(payload), "consortium: call refused by its target"
    self.proposal_payload[self.proposal_count] = payload
    return self._propose(self._simple_proposal(KIND_CALL, target, 0, 0))


@external
def propose_release(task: address, round_id: uint256) -> uint256:
    """
    @notice Propose releasing a task's finalized model version for use outside the consortium.
    @param task A task contract this consortium governs.
    @param round_id The finalized round whose model is released.
    @return The proposal id.
    """
    self._check_admin(msg.sender)
    assert task.is_contract, "consortium: target is not a contract"
    assert staticcall IGoverned(task).consortium() == self, "consortium: target is not governed by this consortium"
    model_hash: bytes32 = staticcall IGoverned(task).model_at(round_id)
    assert self.released_at[task][model_hash] == 0, "consortium: model already released"
    self.proposal_payload[self.proposal_count] = abi_encode(round_id, model_hash)
    return self._propose(self._simple_proposal(KIND_RELEASE, task, 0, 0))


@external
def approve(proposal_id: uint256):
    """
    @notice Approve a pending proposal; executes it once approvals reach the threshold.
    @param proposal_id The proposal.
    """
    self._check_admin(msg.sender)
    self._check_pending(proposal_id)
    assert not self.has_approved[proposal_id][msg.sender], "consortium: already approved"
    self._approve(proposal_id)


@external
def cancel(proposal_id: uint256):
    """
    @notice Withdraw a pending proposal (any admin may, e.g. when it can no longer execute).
    @param proposal_id The proposal.
    """
    self._check_admin(msg.sender)
    self._check_pending(proposal_id)
    self.proposals[proposal_id].cancelled = True
    log ProposalCancelled(proposal_id=proposal_id, admin=msg.sender)


@external
def update_metadata(cert_fingerprint: bytes32, kx_public_key: bytes32, store_uri: String[256]):
    """
    @notice An active member rotates its own public metadata.
    @param cert_fingerprint Hash of its organization certificate.
    @param kx_public_key Its key-agreement public key.
    @param store_uri Where its published blobs are.
    """
    assert self.members[msg.sender].status == STATUS_ACTIVE, "consortium: caller is not an active member"
    self.members[msg.sender].cert_fingerprint = cert_fingerprint
    self.members[msg.sender].kx_public_key = kx_public_key
    self.members[msg.sender].store_uri = store_uri
    log MetadataUpdated(
        member=msg.sender,
        cert_fingerprint=cert_fingerprint,
        kx_public_key=kx_public_key,
        store_uri=store_uri,
    )


@view
@external
def is_active(who: address) -> bool:
    """
    @notice Whether `who` is an admitted, unrevoked member.
    @param who The address.
    @return True when active.
    """
    return self.members[who].status == STATUS_ACTIVE


@view
@external
def has_role(who: address, role: uint256) -> bool:
    """
    @notice Whether `who` is active and holds every role bit in `role`.
    @param who The address.
    @param role Role bits.
    @return True when it holds them all.
    """
    return self.members[who].status == STATUS_ACTIVE and self.members[who].roles & role == role


@view
@external
def count_with_role(role: uint256) -> uint256:
    """
    @notice Number of active members holding every bit in `role`.
    @param role Role bits.
    @return The count.
    """
    n: uint256 = 0
    for who: address in self.member_list:
        if self.members[who].status == STATUS_ACTIVE and self.members[who].roles & role == role:
            n += 1
    return n


@view
@external
def member_count() -> uint256:
    """
    @notice Number of addresses ever admitted (active or revoked).
    @return The count.
    """
    return len(self.member_list)


@view
@external
def member_at(index: uint256) -> address:
    """
    @notice The `index`-th admitted address, in admission order.
    @param index Position from 0.
    @return The address.
    """
    assert index < len(self.member_list), "consortium: index out of range"
    return self.member_list[index]


@view
@external
def roles_of(who: address) -> uint256:
    """
    @notice The role bits `who` holds now.
    @param who The address.
    @return Its roles (0 for a non-member or a revoked one).
    """
    if self.members[who].status != STATUS_ACTIVE:
        return 0
    return self.members[who].roles


@view
@external
def trainers_before(before_block: uint256) -> DynArray[address, MAX_MEMBERS]:
    """
    @notice Every trainer without a break since a block before `before_block`, in admission order:
            a secure round opened at that block lists exactly these.
    @param before_block The round's opening block.
    @return The trainers.
    """
    result: DynArray[address, MAX_MEMBERS] = []
    for who: address in self.member_list:
        if self._is_trainer_before(who, before_block):
            result.append(who)
    return result


@view
@external
def trainer_listings(
    members: DynArray[address, MAX_LISTINGS], before_block: uint256
) -> DynArray[IConsortium.TrainerListing, MAX_LISTINGS]:
    """
    @notice Whether a round opened at `before_block` lists each of `members`, and its key-agreement
            key, in one call.
    @param members The addresses asked about (a member's neighbourhood in a round).
    @param before_block The round's opening block.
    @return One entry per address asked about, in the same order (zero key where not listed).
    """
    result: DynArray[IConsortium.TrainerListing, MAX_LISTINGS] = []
    for who: address in members:
        listing: IConsortium.TrainerListing = empty(IConsortium.TrainerListing)
        if self._is_trainer_before(who, before_block):
            listing = IConsortium.TrainerListing(listed=True, kx_public_key=self.members[who].kx_public_key)
        result.append(listing)
    return result


@view
@internal
def _is_trainer_before(who: address, before_block: uint256) -> bool:
    """
    @notice Whether `who` has held the trainer role without a break since a block before `before_block`.
    @param who The address.
    @param before_block The block.
    @return True when it has.
    """
    since: uint256 = self.trainer_since[who]
    return since != 0 and since < before_block


@internal
def _check_admin(who: address):
    """
    @notice Refuse `who` unless it is an active admin.
    @param who The caller.
    """
    assert self.members[who].status == STATUS_ACTIVE and self.members[who].roles & ROLE_ADMIN != 0, \
        "consortium: caller is not an admin"


@view
@internal
def _check_pending(proposal_id: uint256):
    """
    @notice Refuse a proposal that does not exist, was executed or was cancelled.
    @param proposal_id The proposal.
    """
    assert proposal_id < self.proposal_count, "consortium: unknown proposal"
    assert not self.proposals[proposal_id].executed, "consortium: proposal already executed"
    assert not self.proposals[proposal_id].cancelled, "consortium: proposal cancelled"


@view
@internal
def _simple_proposal(kind: uint8, target: address, roles: uint256, threshold: uint256) -> Proposal:
    """
    @notice A proposal by the caller without admission metadata (role change, revocation, threshold).
    @param kind What it proposes.
    @param target The member it is about (zero for a threshold change).
    @param roles The new roles (role changes).
    @param threshold The new threshold (threshold changes).
    @return The proposal, not yet stored.
    """
    return Proposal(
        kind=kind,
        target=target,
        roles=roles,
        threshold=threshold,
        org="",
        cert_fingerprint=empty(bytes32),
        kx_public_key=empty(bytes32),
        store_uri="",
        proposer=msg.sender,
        approvals=0,
        executed=False,
        cancelled=False,
    )


@internal
def _propose(proposal: Proposal) -> uint256:
    """
    @notice Store a proposal, log it, and count the proposer's approval (which executes it at threshold 1).
    @param proposal The proposal.
    @return Its id.
    """
    proposal_id: uint256 = self.proposal_count
    self.proposal_count = proposal_id + 1
    self.proposals[proposal_id] = proposal
    log ProposalCreated(proposal_id=proposal_id, kind=proposal.kind, target=proposal.target, proposer=msg.sender)
    self._approve(proposal_id)
    return proposal_id


@internal
def _approve(proposal_id: uint256):
    """
    @notice Record the caller's approval and execute the proposal once the active admins among its
            approvers reach the threshold.
    @param proposal_id The proposal.
    """
    assert len(self.approvers[proposal_id]) < MAX_APPROVERS, "consortium: too many approvals"
    self.has_approved[proposal_id][msg.sender] = True
    self.approvers[proposal_id].append(msg.sender)
    # Count only approvers who are still active admins: a revoked admin's earlier vote lapses.
    approvals: uint256 = 0
    for who: address in self.approvers[proposal_id]:
        if self.members[who].status == STATUS_ACTIVE and self.members[who].roles & ROLE_ADMIN != 0:
            approvals += 1
    self.proposals[proposal_id].approvals = approvals
    log ProposalApproved(proposal_id=proposal_id, admin=msg.sender, approvals=approvals)
    if approvals >= self.threshold:
        self._execute(proposal_id)


@internal
def _execute(proposal_id: uint256):
    """
    @notice Apply an approved proposal, checking again the state it depends on.
    @param proposal_id The proposal.
    """
    p: Proposal = self.proposals[proposal_id]
    self.proposals[proposal_id].executed = True
    if p.kind == KIND_ADMIT:
        # State may have moved since the proposal was made.
        assert self.members[p.target].status == STATUS_NONE, "consortium: address already known"
        self._admit(p.target, p.org, p.roles, p.cert_fingerprint, p.kx_public_key, p.store_uri, proposal_id)
    elif p.kind == KIND_SET_ROLES:
        assert self.members[p.target].status == STATUS_ACTIVE, "consortium: not an active member"
        old_roles: uint256 = self.members[p.target].roles
        if old_roles & ROLE_ADMIN != 0 and p.roles & ROLE_ADMIN == 0:
            self._drop_admin()
        elif old_roles & ROLE_ADMIN == 0 and p.roles & ROLE_ADMIN != 0:
            self.admin_count += 1
        self.members[p.target].roles = p.roles
        if p.roles & ROLE_TRAINER == 0:
            self.trainer_since[p.target] = 0
        elif old_roles & ROLE_TRAINER == 0:
            self.trainer_since[p.target] = block.number
        log RolesChanged(member=p.target, old_roles=old_roles, new_roles=p.roles, proposal_id=proposal_id)
    elif p.kind == KIND_REVOKE:
        assert self.members[p.target].status == STATUS_ACTIVE, "consortium: not an active member"
        if self.members[p.target].roles & ROLE_ADMIN != 0:
            self._drop_admin()
        self.members[p.target].status = STATUS_REVOKED
        self.members[p.target].revoked_at = block.number
        self.trainer_since[p.target] = 0
        log MemberRevoked(member=p.target, proposal_id=proposal_id)
    elif p.kind == KIND_CALL:
        payload: Bytes[MAX_PAYLOAD] = self.proposal_payload[proposal_id]
        # A refusal by the target reverts this approval with the target's reason; the proposal
        # stays pending, to be approved again once its state allows or cancelled.
        raw_call(p.target, payload)
        log CallExecuted(proposal_id=proposal_id, target=p.target, selector=convert(slice(payload, 0, 4), bytes4))
    elif p.kind == KIND_RELEASE:
        round_id: uint256 = 0
        model_hash: bytes32 = empty(bytes32)
        round_id, model_hash = abi_decode(self.proposal_payload[proposal_id], (uint256, bytes32))
        assert self.released_at[p.target][model_hash] == 0, "consortium: model already released"
        self.released_at[p.target][model_hash] = block.number
        log ModelReleased(task=p.target, round_id=round_id, model_hash=model_hash, proposal_id=proposal_id)
    else:
        assert p.threshold <= self.admin_count, "consortium: threshold above admin count"
        old_threshold: uint256 = self.threshold
        self.threshold = p.threshold
        log ThresholdChanged(old_threshold=old_threshold, new_threshold=p.threshold, proposal_id=proposal_id)


@internal
def _drop_admin():
    """
    @notice Count one admin less; refused when fewer admins than the threshold would remain.
    """
    # Never leave fewer admins than approvals needed: governance would be stuck.
    assert self.admin_count > self.threshold, "consortium: would leave fewer admins than the threshold"
    self.admin_count -= 1


@internal
def _admit(
    member: address,
    org: String[64],
    roles: uint256,
    cert_fingerprint: bytes32,
    kx_public_key: bytes32,
    store_uri: String[256],
    proposal_id: uint256,
):
    """
    @notice Admit `member` with its roles and public metadata, and log it.
    @param member The new member's address.
    @param org Its organization's name.
    @param roles Its role bits.
    @param cert_fingerprint Hash of its organization certificate.
    @param kx_public_key Its key-agreement public key (secure aggregation).
    @param store_uri Where its published blobs are.
    @param proposal_id The proposal that admitted it.
    """
    self.members[member] = IConsortium.Member(
        org=org,
        roles=roles,
        status=STATUS_ACTIVE,
        cert_fingerprint=cert_fingerprint,
        kx_public_key=kx_public_key,
        store_uri=store_uri,
        admitted_at=block.number,
        revoked_at=0,
    )
    self.member_list.append(member)
    if roles & ROLE_TRAINER != 0:
        self.trainer_since[member] = block.number
    if roles & ROLE_ADMIN != 0:
        self.admin_count += 1
    log MemberAdmitted(member=member, org=org, roles=roles, proposal_id=proposal_id)
