# pragma version ~=0.4.3
"""
@title fedledger data registry
@notice Which datasets the members train on, what they may be used for, and
        which data subjects were erased from them. A dataset is registered by
        its owner with commitments only: a Merkle root of its rows, a schema
        hash, a hash of its column classification and of its privacy policy,
        and the purposes of processing (GDPR Art. 5(1)(b), purpose limitation)
        its data subjects consented to. Training commitments reference a
        dataset id, so lineage runs model version -> updates -> datasets.
@dev No "updated at" block is stored: when it equals the current block an SSTORE is a
     no-op in anvil's gas estimate (run on the latest block) but not once mined,
     and the transaction runs out of gas. Events carry every change's block.
     Never raw or personal data: every field is a hash, a count or an
     address. A purpose is the keccak256 of its canonical name (for example
     keccak256("model-training:heart-disease")); a subject in an erasure
     record is an HMAC of the subject id under the owner's key, bound to the
     dataset id, so erasures of the same person in two datasets cannot be
     linked by anyone but the owner. Dataset ids count from 1; 0 means none.
"""

from interfaces import IConsortium
from interfaces import IDataRegistry

implements: IDataRegistry

ROLE_ADMIN: constant(uint256) = 1

STATUS_NONE: constant(uint8) = 0
STATUS_ACTIVE: constant(uint8) = 1
STATUS_REVOKED: constant(uint8) = 2

MAX_PURPOSES: constant(uint256) = 16
MAX_DATASETS_PER_OWNER: constant(uint256) = 256


struct Dataset:
    owner: address
    status: uint8
    commitment: bytes32
    schema_hash: bytes32
    classification_hash: bytes32
    policy_hash: bytes32
    rows: uint256
    erasures: uint256
    registered_at: uint256


consortium: public(IConsortium)
dataset_count: public(uint256)
datasets: HashMap[uint256, Dataset]
purposes: HashMap[uint256, DynArray[bytes32, MAX_PURPOSES]]
allowed: HashMap[uint256, HashMap[bytes32, bool]]
owned: HashMap[address, DynArray[uint256, MAX_DATASETS_PER_OWNER]]
erased: HashMap[uint256, HashMap[bytes32, bool]]


event DatasetRegistered:
    dataset_id: indexed(uint256)
    owner: indexed(address)
    commitment: bytes32
    schema_hash: bytes32
    classification_hash: bytes32
    policy_hash: bytes32
    purposes: DynArray[bytes32, MAX_PURPOSES]
    rows: uint256

event DatasetUpdated:
    dataset_id: indexed(uint256)
    old_commitment: bytes32
    commitment: bytes32
    rows: uint256

event PurposesChanged:
    dataset_id: indexed(uint256)
    old_purposes: DynArray[bytes32, MAX_PURPOSES]
    purposes: DynArray[bytes32, MAX_PURPOSES]

event SubjectErased:
    dataset_id: indexed(uint256)
    subject_hash: indexed(bytes32)
    erasures: uint256

event DatasetRevoked:
    dataset_id: indexed(uint256)
    owner: indexed(address)


@deploy
def __init__(consortium: address):
    """
    @notice Create the registry of `consortium`; only one of its admins may.
    @param consortium The Consortium contract whose active members register datasets.
    """
    assert consortium != empty(address), "registry: zero consortium address"
    self.consortium = IConsortium(consortium)
    assert staticcall self.consortium.has_role(msg.sender, ROLE_ADMIN), "registry: caller is not an admin"


@external
def register_dataset(
    commitment: bytes32,
    schema_hash: bytes32,
    classification_hash: bytes32,
    policy_hash: bytes32,
    purposes: DynArray[bytes32, MAX_PURPOSES],
    rows: uint256,
) -> uint256:
    """
    @notice Register a dataset owned by the caller (an active member).
    @param commitment Merkle root of the dataset's (protected) rows.
    @param schema_hash Hash of the column names and types.
    @param classification_hash Hash of the column classification (identifier, quasi-identifier, sensitive...).
    @param policy_hash Hash of the privacy policy applied to the data.
    @param purposes The purposes of processing the data may be used for (keccak256 of their names).
    @param rows Number of rows committed to.
    @return The new dataset id (from 1).
    """
    self._check_member(msg.sender)
    assert commitment != empty(bytes32), "registry: zero commitment"
    assert schema_hash != empty(bytes32), "registry: zero schema hash"
    assert classification_hash != empty(bytes32), "registry: zero classification hash"
    assert policy_hash != empty(bytes32), "registry: zero policy hash"
    assert rows > 0, "registry: zero rows"
    assert len(self.owned[msg.sender]) < MAX_DATASETS_PER_OWNER, "registry: too many datasets for this owner"
    dataset_id: uint256 = self.dataset_count + 1
    self._set_allowed(dataset_id, purposes)
    self.dataset_count = dataset_id
    self.datasets[dataset_id] = Dataset(
        owner=msg.sender,
        status=STATUS_ACTIVE,
        commitment=commitment,
        schema_hash=schema_hash,
        classification_hash=classification_hash,
        policy_hash=policy_hash,
        rows=rows,
        erasures=0,
        registered_at=block.number,
    )
    self.purposes[dataset_id] = purposes
    self.owned[msg.sender].append(dataset_id)
    log DatasetRegistered(
        dataset_id=dataset_id,
        owner=msg.sender,
        commitment=commitment,
        schema_hash=schema_hash,
        classification_hash=classification_hash,
        policy_hash=policy_hash,
        purposes=purposes,
        rows=rows,
    )
    return dataset_id


@external
def update_commitment(dataset_id: uint256, commitment: bytes32, rows: uint256):
    """
    @notice The owner commits to a new version of an active dataset's rows (same schema and purposes).
    @param dataset_id The dataset id.
    @param commitment Merkle root of the new version's (protected) rows.
    @param rows Number of rows committed to.
    """
    self._check_owner(dataset_id)
    self._check_active(dataset_id)
    assert commitment != empty(bytes32), "registry: zero commitment"
    assert rows > 0, "registry: zero rows"
    old: bytes32 = self.datasets[dataset_id].commitment
    assert commitment != old or rows != self.datasets[dataset_id].rows, "registry: commitment unchanged"
    self.datasets[dataset_id].commitment = commitment
    self.datasets[dataset_id].rows = rows
    log DatasetUpdated(dataset_id=dataset_id, old_commitment=old, commitment=commitment, rows=rows)


@external
def set_purposes(dataset_id: uint256, purposes: DynArray[bytes32, MAX_PURPOSES]):
    """
    @notice The owner replaces an active dataset's purposes (consent given or withdrawn).
    @param dataset_id The dataset id.
    @param purposes The purposes it now allows (keccak256 of their names).
    """
    self._check_owner(dataset_id)
    self._check_active(dataset_id)
    old: DynArray[bytes32, MAX_PURPOSES] = self.purposes[dataset_id]
    assert keccak256(abi_encode(old)) != keccak256(abi_encode(purposes)), "registry: purposes unchanged"
    for purpose: bytes32 in old:
        self.allowed[dataset_id][purpose] = False
    self._set_allowed(dataset_id, purposes)
    self.purposes[dataset_id] = purposes
    log PurposesChanged(dataset_id=dataset_id, old_purposes=old, purposes=purposes)


@external
def record_erasure(dataset_id: uint256, subject_hash: bytes32):
    """
    @notice The owner records that a data subject's values in the dataset were
            erased (their key destroyed). Allowed on revoked datasets too:
            erasure requests outlive a dataset's use.
    @param dataset_id The dataset id.
    @param subject_hash HMAC of the subject id under the owner's key, bound to the dataset id.
    """
    self._check_owner(dataset_id)
    assert subject_hash != empty(bytes32), "registry: zero subject hash"
    assert not self.erased[dataset_id][subject_hash], "registry: subject already erased"
    self.erased[dataset_id][subject_hash] = True
    erasures: uint256 = self.datasets[dataset_id].erasures + 1
    self.datasets[dataset_id].erasures = erasures
    log SubjectErased(dataset_id=dataset_id, subject_hash=subject_hash, erasures=erasures)


@external
def revoke_dataset(dataset_id: uint256):
    """
    @notice The owner withdraws a dataset for good: it allows no purpose any more.
    @param dataset_id The dataset id.
    """
    self._check_owner(dataset_id)
    self._check_active(dataset_id)
    self.datasets[dataset_id].status = STATUS_REVOKED
    log DatasetRevoked(dataset_id=dataset_id, owner=msg.sender)


@view
@external
def dataset(dataset_id: uint256) -> Dataset:
    """
    @notice A registered dataset's record.
    @param dataset_id The dataset id (from 1).
    @return Its record.
    """
    self._check_known(dataset_id)
    return self.datasets[dataset_id]


@view
@external
def purposes_of(dataset_id: uint256) -> DynArray[bytes32, MAX_PURPOSES]:
    """
    @notice The purposes a registered dataset currently allows (empty once revoked).
    @param dataset_id The dataset id.
    @return keccak256 of the purposes' names.
    """
    self._check_known(dataset_id)
    if self.datasets[dataset_id].status != STATUS_ACTIVE:
        return []
    return self.purposes[dataset_id]


@view
@external
def datasets_of(owner: address) -> DynArray[uint256, MAX_DATASETS_PER_OWNER]:
    """
    @notice Ids of every dataset `owner` registered, active or revoked, in registration order.
    @param owner The member.
    @return The dataset ids.
    """
    return self.owned[owner]


@view
@external
def allows(dataset_id: uint256, purpose: bytes32) -> bool:
    """
    @notice Whether the dataset exists, is active and allows `purpose`.
    @param dataset_id The dataset id.
    @param purpose keccak256 of the purpose's name.
    @return True when allowed.
    """
    return self.datasets[dataset_id].status == STATUS_ACTIVE and self.allowed[dataset_id][purpose]


@view
@external
def owner_of(dataset_id: uint256) -> address:
    """
    @notice The owner of a dataset (the zero address when it does not exist), for other contracts'
            checks, e.g. that a training commitment references the committer's own dataset.
    @param dataset_id The dataset id.
    @return Its owner.
    """
    return self.datasets[dataset_id].owner


@view
@external
def is_erased(dataset_id: uint256, subject_hash: bytes32) -> bool:
    """
    @notice Whether an erasure of `subject_hash` was recorded for the dataset.
    @param dataset_id The dataset id.
    @param subject_hash The subject's keyed hash, bound to the dataset.
    @return True when recorded.
    """
    return self.erased[dataset_id][subject_hash]


@view
@internal
def _check_member(who: address):
    """
    @notice Refuse `who` unless it is an active member of the consortium.
    @param who The caller.
    """
    assert staticcall self.consortium.is_active(who), "registry: caller is not an active member"


@view
@internal
def _check_known(dataset_id: uint256):
    """
    @notice Refuse an id no dataset was registered under.
    @param dataset_id The dataset id.
    """
    assert dataset_id >= 1 and dataset_id <= self.dataset_count, "registry: dataset id out of range"


@view
@internal
def _check_owner(dataset_id: uint256):
    """
    @notice Refuse a caller that is not an active member owning the (registered) dataset.
    @param dataset_id The dataset id.
    """
    # A revoked member's key is presumed compromised: it can no longer change its datasets.
    self._check_member(msg.sender)
    self._check_known(dataset_id)
    assert self.datasets[dataset_id].owner == msg.sender, "registry: caller is not the dataset owner"


@view
@internal
def _check_active(dataset_id: uint256):
    """
    @notice Refuse a revoked dataset.
    @param dataset_id The dataset id.
    """
    assert self.datasets[dataset_id].status == STATUS_ACTIVE, "registry: dataset revoked"


@internal
def _set_allowed(dataset_id: uint256, purposes: DynArray[bytes32, MAX_PURPOSES]):
    """
    @notice Allow each of `purposes` for the dataset: at least one, none zero, none repeated.
    @param dataset_id The dataset id.
    @param purposes keccak256 of the purposes' canonical names.
    """
    assert len(purposes) > 0, "registry: empty purposes"
    for purpose: bytes32 in purposes:
        assert purpose != empty(bytes32), "registry: zero purpose"
        assert not self.allowed[dataset_id][purpose], "registry: duplicate purpose"
        self.allowed[dataset_id][purpose] = True
