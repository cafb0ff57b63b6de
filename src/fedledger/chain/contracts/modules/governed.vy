# pragma version ~=0.4.3
"""
@title Governed task settings
@custom:contract-name governed
@notice What the consortium's M-of-N vote may change on a running task: pause
        and resume it, and set the parameters the task declared mutable, within
        the bounds it declared at creation. Only the consortium contract calls
        these, executing an approved proposal.
@dev A new parameter value is staged and takes effect when the next round
     opens, so a round always runs under the settings it opened with. The rules
     that decide acceptance and pay (threshold, approvals, reputation, privacy
     budget) are not mutable: every past round stays judged by the rule
     announced for it, which is what the audit replays.
"""

from . import membership
from . import round_core

uses: membership
uses: round_core

PARAM_COMMIT_DURATION: constant(uint8) = 1
PARAM_VALIDATE_DURATION: constant(uint8) = 2
PARAM_AGGREGATE_DURATION: constant(uint8) = 3
PARAM_PROPOSAL_QUORUM: constant(uint8) = 4
MAX_PARAMS: constant(uint256) = 4
# The consortium's bound on a call proposal's calldata.
MAX_PAYLOAD: constant(uint256) = 260


struct ParamBounds:
    param: uint8
    low: uint256
    high: uint256


paused: public(bool)
# param -> its declared bounds (high == 0: not mutable; a duration or quorum is never 0)
param_low: public(HashMap[uint8, uint256])
param_high: public(HashMap[uint8, uint256])
# param -> value + 1 waiting for the next round (0: nothing staged)
staged: public(HashMap[uint8, uint256])


event TaskPaused:
    paused: bool

event ParamStaged:
    param: uint8
    value: uint256

event ParamChanged:
    param: uint8
    old_value: uint256
    new_value: uint256
    round_id: uint256


@deploy
def __init__(bounds: DynArray[ParamBounds, MAX_PARAMS]):
    """
    @notice Declare which parameters the consortium may change later, and within what.
    @param bounds One entry per mutable parameter; the task's starting value must lie within.
    """
    for b: ParamBounds in bounds:
        assert b.param >= 1 and convert(b.param, uint256) <= MAX_PARAMS, "task: unknown parameter"
        assert self.param_high[b.param] == 0, "task: parameter bounded twice"
        assert b.low >= 1 and b.low <= b.high, "task: bad parameter bounds"
        current: uint256 = self._value(b.param)
        assert current >= b.low and current <= b.high, "task: parameter outside its own bounds"
        self.param_low[b.param] = b.low
        self.param_high[b.param] = b.high


@external
def set_paused(paused: bool):
    """
    @notice Pause the task (no new round opens; a round already open runs to its end) or resume it.
    @param paused True to pause, False to resume.
    """
    self._check_consortium()
    self._check_pause(paused)
    self.paused = paused
    log TaskPaused(paused=paused)


@external
def set_param(param: uint8, new_value: uint256):
    """
    @notice Stage a new value of a mutable parameter, in force from the next round on.
    @param param The parameter's id (PARAM_*).
    @param new_value Its new value, within the declared bounds.
    """
    self._check_consortium()
    self._check_param(param, new_value)
    self.staged[param] = new_value + 1
    log ParamStaged(param=param, value=new_value)


@view
@external
def check_governed_call(payload: Bytes[MAX_PAYLOAD]) -> bool:
    """
    @notice Vet a call the consortium is asked to vote on: refused now, with the reason it would
            fail with, rather than after admins approved it.
    @param payload The proposed calldata.
    @return True when the call would be accepted in the current state.
    """
    selector: bytes4 = convert(slice(payload, 0, 4), bytes4)
    if selector == method_id("set_paused(bool)", output_type=bytes4):
        assert len(payload) == 36, "task: malformed governed call"
        self._check_pause(abi_decode(slice(payload, 4, 32), bool))
    elif selector == method_id("set_param(uint8,uint256)", output_type=bytes4):
        assert len(payload) == 68, "task: malformed governed call"
        param: uint8 = 0
        new_value: uint256 = 0
        param, new_value = abi_decode(slice(payload, 4, 64), (uint8, uint256))
        self._check_param(param, new_value)
    else:
        raise "task: not a governed function"
    return True


@internal
def _open_check(round_id: uint256):
    """
    @notice Refuse to open a round while paused; otherwise put staged values in force for it.
    @param round_id The round about to open.
    """
    assert not self.paused, "task: paused"
    for i: uint256 in range(1, MAX_PARAMS + 1):
        param: uint8 = convert(i, uint8)
        if self.staged[param] != 0:
            new_value: uint256 = self.staged[param] - 1
            self.staged[param] = 0
            log ParamChanged(param=param, old_value=self._value(param), new_value=new_value, round_id=round_id)
            self._set(param, new_value)


@view
@internal
def _check_consortium():
    """
    @notice Refuse any caller but the consortium contract (which calls only on an approved proposal).
    """
    assert msg.sender == membership.consortium.address, "task: caller is not the consortium"


@view
@internal
def _check_pause(paused: bool):
    """
    @notice Refuse a pause of a paused task, or a resumption of a running one.
    @param paused The state asked for.
    """
    assert paused != self.paused, "task: already in that pause state"


@view
@internal
def _check_param(param: uint8, new_value: uint256):
    """
    @notice Refuse a parameter the task did not declare mutable, or a value outside its bounds.
    @param param The parameter's id.
    @param new_value The proposed value.
    """
    assert self.param_high[param] != 0, "task: parameter not mutable"
    assert new_value >= self.param_low[param] and new_value <= self.param_high[param], "task: value outside mutable bounds"


@view
@internal
def _value(param: uint8) -> uint256:
    """
    @notice A parameter's value in force.
    @param param The parameter's id.
    @return Its value.
    """
    if param == PARAM_COMMIT_DURATION:
        return round_core.commit_duration
    if param == PARAM_VALIDATE_DURATION:
        return round_core.validate_duration
    if param == PARAM_AGGREGATE_DURATION:
        return round_core.aggregate_duration
    return round_core.proposal_quorum


@internal
def _set(param: uint8, new_value: uint256):
    """
    @notice Put a parameter's new value in force.
    @param param The parameter's id.
    @param new_value Its new value.
    """
    if param == PARAM_COMMIT_DURATION:
        round_core.commit_duration = new_value
    elif param == PARAM_VALIDATE_DURATION:
        round_core.validate_duration = new_value
    elif param == PARAM_AGGREGATE_DURATION:
        round_core.aggregate_duration = new_value
    else:
        round_core.proposal_quorum = new_value
