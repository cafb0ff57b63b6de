"""The ``/api/v1`` routes: sign-in, and read-only views of the ledger (each needs a reader: :mod:`.access`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from fedledger.api.access import ApiState, Reader, api_state, bearer_token
from fedledger.api.auth import (
    CLOCK_SKEW_SECONDS,
    SIGN_IN_STATEMENT,
    issued_window,
    parse_siwe_message,
    recover_signer,
)
from fedledger.api.schemas import (
    AuditModel,
    ConsortiumModel,
    DatasetsModel,
    HeadModel,
    IdentityModel,
    LineageModel,
    LoginRequest,
    LoginResponse,
    NonceResponse,
    PrivacyModel,
    RewardsModel,
    RoundModel,
    TaskMetricsModel,
    TaskModel,
)
from fedledger.exceptions import BadInput

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
State = Annotated[ApiState, Depends(api_state)]
TaskName = Annotated[str, Path(description="Task name in the served workspace.", pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
RoundQuery = Annotated[int | None, Query(ge=0, le=2**32, description="Only this round.")]


def _task_name(name: TaskName, state: State) -> str:
    if name not in state.view.task_names:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no task named {name!r}")
    return name


Task = Annotated[str, Depends(_task_name)]


# -- sign-in ------------------------------------------------------------------------------------------------------


def _origin(request: Request) -> tuple[str, str]:
    """(domain, URI) a sign-in message must name: this server as the client reached it."""
    domain = request.headers.get("host", "")
    return domain, f"{request.url.scheme}://{domain}/"


@router.get("/auth/nonce", response_model=NonceResponse, tags=["sign-in"])
def nonce(request: Request, state: State) -> dict[str, Any]:
    """A one-time nonce and the fields of the EIP-4361 message to sign with a member key."""
    domain, uri = _origin(request)
    value, _ = state.nonces.issue(domain)
    issued, expires = issued_window()
    return {
        "nonce": value,
        "domain": domain,
        "uri": uri,
        "chain_id": state.view.chain_id,
        "statement": SIGN_IN_STATEMENT,
        "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expiration_time": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@router.post("/auth/login", response_model=LoginResponse, tags=["sign-in"])
def login(body: LoginRequest, request: Request, state: State) -> dict[str, Any]:
    """Exchange a signed EIP-4361 message for a session token: 401 when the message or signature does not hold,
    403 when the signer is not an active consortium member."""
    domain, uri = _origin(request)
    try:
        message = parse_siwe_message(body.message)
        if message.domain != domain or message.uri != uri:
            raise BadInput(f"sign-in message: it names {message.domain} ({message.uri}), this server is {uri}")
        if message.chain_id != state.view.chain_id:
            raise BadInput(f"sign-in message: chain {message.chain_id}, this server reads chain {state.view.chain_id}")
        now = datetime.now(UTC)
        if not message.issued_at - timedelta(seconds=CLOCK_SKEW_SECONDS) <= now < message.expiration_time:
            raise BadInput("sign-in message: outside its validity window")
        signer = recover_signer(body.message, body.signature)
        if signer != message.address:
            raise BadInput("sign-in message: the signature is not by the message's address")
        state.nonces.consume(message.nonce, domain)
    except BadInput as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(exc)) from exc
    if not state.view.is_active_member(signer):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"{signer} is not an active member of the consortium")
    token, identity = state.sessions.open(signer)
    return {
        "token": token,
        "kind": identity.kind,
        "address": signer,
        "org": state.view.org_of(signer),
        "expires_at": identity.expires_at,
    }


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["sign-in"])
def logout(token: Annotated[str, Depends(bearer_token)], state: State) -> Response:
    """End this session (the auditor token stays valid: it is the server's to change)."""
    state.sessions.close(token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/whoami", response_model=IdentityModel, tags=["sign-in"])
def whoami(reader: Reader, state: State) -> dict[str, Any]:
    org = state.view.org_of(reader.address) if reader.address else None
    return {"kind": reader.kind, "address": reader.address, "org": org, "expires_at": reader.expires_at}


# -- the ledger -----------------------------------------------------------------------------------------------------


@router.get("/head", response_model=HeadModel, tags=["ledger"])
def head(_: Reader, state: State) -> dict[str, Any]:
    """The chain head and each task's round and phase (cheap: poll it to follow a running task)."""
    return state.view.read(state.view.head, "head")


@router.get("/consortium", response_model=ConsortiumModel, tags=["ledger"])
def consortium(_: Reader, state: State) -> dict[str, Any]:
    """Members with their roles and status, the approval threshold and pending proposals."""
    return state.view.read(state.view.consortium, "consortium")


@router.get("/tasks", response_model=list[TaskModel], tags=["tasks"])
def tasks(_: Reader, state: State) -> list[dict[str, Any]]:
    view = state.view
    return view.read(lambda: [view.task(name) for name in view.task_names], "tasks")


@router.get("/tasks/{name}", response_model=TaskModel, tags=["tasks"])
def task(name: Task, _: Reader, state: State) -> dict[str, Any]:
    return state.view.read(lambda: state.view.task(name), ("task", name))


@router.get("/tasks/{name}/rounds", response_model=list[RoundModel], tags=["tasks"])
def rounds(
    name: Task,
    _: Reader,
    state: State,
    from_round: Annotated[int, Query(ge=1, le=2**32, description="First round.")] = 1,
    to_round: Annotated[int | None, Query(ge=1, le=2**32, description="Last round (default: the current).")] = None,
) -> list[dict[str, Any]]:
    """Rounds with their phase, commitments, scores, verdicts (with reasons), aggregate proposals and aborts."""
    if to_round is not None and to_round < from_round:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["query", "to_round"], "msg": "to_round is below from_round", "type": "value_error"}],
        )
    return state.view.read(
        lambda: state.view.rounds(name, from_round, to_round), ("rounds", name, from_round, to_round)
    )


@router.get("/tasks/{name}/rounds/{round_id}", response_model=RoundModel, tags=["tasks"])
def round_(name: Task, round_id: Annotated[int, Path(ge=1, le=2**32)], _: Reader, state: State) -> dict[str, Any]:
    found = state.view.read(lambda: state.view.rounds(name, round_id, round_id), ("rounds", name, round_id, round_id))
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"round {round_id} has not opened")
    return found[0]


@router.get("/tasks/{name}/metrics", response_model=TaskMetricsModel, tags=["tasks"])
def metrics(name: Task, _: Reader, state: State, round: RoundQuery = None) -> dict[str, Any]:  # noqa: A002
    """Each member's posted evaluation metrics per round and their pooled value."""
    return state.view.read(lambda: state.view.metrics(name, round), ("metrics", name, round))


@router.get("/tasks/{name}/privacy", response_model=PrivacyModel, tags=["tasks"])
def privacy(name: Task, _: Reader, state: State) -> dict[str, Any]:
    """The differential-privacy budget and each member's declared cumulative epsilon."""
    return state.view.read(lambda: state.view.privacy(name), ("privacy", name))


@router.get("/tasks/{name}/rewards", response_model=RewardsModel, tags=["tasks"])
def rewards(name: Task, _: Reader, state: State) -> dict[str, Any]:
    """The reward pool, and each member's contributions, earnings, stake and slashes."""
    return state.view.read(lambda: state.view.rewards(name), ("rewards", name))


@router.get("/tasks/{name}/lineage", response_model=list[LineageModel], tags=["tasks"])
def lineage(name: Task, _: Reader, state: State, round: RoundQuery = None) -> list[dict[str, Any]]:  # noqa: A002
    """Each finalized model -> the accepted updates in it -> the registered datasets behind them."""
    return state.view.read(lambda: state.view.lineage(name, round), ("lineage", name, round))


@router.get("/tasks/{name}/audit", response_model=AuditModel, tags=["tasks"])
def audit(name: Task, _: Reader, state: State) -> dict[str, Any]:
    """``fedledger audit verify``: every round and payout re-derived from the events and blobs."""
    return state.view.read(lambda: state.view.audit(name), ("audit", name))


@router.get("/datasets", response_model=DatasetsModel, tags=["data"])
def datasets(_: Reader, state: State) -> dict[str, Any]:
    """Registered datasets with their purposes of processing, and the erasures recorded for them."""
    return state.view.read(state.view.datasets, "datasets")
