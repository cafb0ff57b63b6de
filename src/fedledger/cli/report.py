"""``fedledger report``: compliance reports derived from the ledger, as HTML and PDF, and their verification.

fedledger report gdpr  [--at-block N] [--format html|pdf|both] [--out STEM] [--verify FILE]
fedledger report hipaa [...]
fedledger report model [--task T] [--version V] [...]
fedledger report verify FILE
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.exceptions import BadInput, VerificationFailed

if TYPE_CHECKING:
    from fedledger.reports import LedgerSnapshot, Report, ReportHeader, Verified
    from fedledger.workspace import Workspace

__all__ = ["app"]

app = typer.Typer(
    help="Compliance reports from the ledger (GDPR, HIPAA, model cards) and their check.", no_args_is_help=True
)

AtBlockOpt = Annotated[
    int | None, typer.Option("--at-block", help="Derive from the ledger as it stood at this block (default: latest).")
]
FormatOpt = Annotated[str, typer.Option("--format", help="html, pdf, or both.")]
OutOpt = Annotated[
    Path | None,
    typer.Option(help="Output path without its suffix (default: ./<kind>-block-<N> in the current folder)."),
]
VerifyOpt = Annotated[
    Path | None,
    typer.Option("--verify", help="Instead of writing, check this report file against the derivation; exit 13 if not."),
]


def _snapshot(ws: Workspace, block: int | None) -> LedgerSnapshot:
    from fedledger.reports import LedgerSnapshot

    return LedgerSnapshot.at(
        ws.chain,
        ws.store(),
        consortium=ws.config.consortium,
        registry=ws.config.data_registry or _task_registry(ws),
        tasks=ws.config.tasks,
        block=block,
    )


def _task_registry(ws: Workspace) -> str:
    """The data registry the workspace's tasks check, where the workspace config names none (a member that joined
    a task knows it from the task)."""
    from fedledger.chain.task import ZERO_ADDRESS

    for name in sorted(ws.config.tasks):
        registry = ws.task(name).params().data_registry
        if registry != ZERO_ADDRESS:
            return registry
    return ""


def _formats(fmt: str) -> list[str]:
    if fmt == "both":
        return ["html", "pdf"]
    if fmt not in ("html", "pdf"):
        raise BadInput(f"unknown format {fmt!r}: expected html, pdf or both")
    return [fmt]


def _emit(
    workspace: Path,
    kind: str,
    args: dict[str, Any],
    block: int | None,
    fmt: str,
    out: Path | None,
    verify: Path | None,
    json_out: bool,
) -> None:
    """Derive the report and write it in each format asked, or, with ``verify``, check that file against it."""
    from fedledger.reports import derive_report, render

    if verify is not None:
        _verify_file(workspace, verify, json_out, expect_kind=kind, expect_block=block)
        return
    formats = _formats(fmt)
    with open_workspace(workspace) as ws:
        report = derive_report(_snapshot(ws, block), kind, args)
        rendered = {f: render(report, f) for f in formats}  # type: ignore[arg-type]
    stem = out or Path(f"{kind}-block-{report.provenance['block']}")
    written = []
    for f, data in rendered.items():
        path = stem.with_name(stem.name + "." + f)
        path.write_bytes(data)
        written.append(str(path))
    result = {
        "kind": kind,
        "block": report.provenance["block"],
        "chain_id": report.provenance["chain_id"],
        "facts_sha256": report.digest,
        "files": written,
        "verify": f"fedledger report verify {written[0]}",
    }
    if json_out:
        print_json(result)
        return
    console.print(f"[green]Derived[/] the {kind} report at block {result['block']} of chain {result['chain_id']}")
    for path_text in written:
        console.print(f"  wrote {path_text}")
    console.print(f"  check it: {result['verify']}")


@app.command("gdpr")
def gdpr(
    workspace: WorkspaceOpt = DEFAULT_WS,
    at_block: AtBlockOpt = None,
    fmt: FormatOpt = "both",
    out: OutOpt = None,
    verify: VerifyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Records of processing (GDPR Art. 30) per dataset, erasures (Art. 17), lawful bases, from the ledger."""
    _emit(workspace, "gdpr", {}, at_block, fmt, out, verify, json_out)


@app.command("hipaa")
def hipaa(
    workspace: WorkspaceOpt = DEFAULT_WS,
    at_block: AtBlockOpt = None,
    fmt: FormatOpt = "both",
    out: OutOpt = None,
    verify: VerifyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Audit controls (HIPAA 164.312(b)): who accessed or contributed what, when, under which role."""
    _emit(workspace, "hipaa", {}, at_block, fmt, out, verify, json_out)


@app.command("model")
def model(
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: Annotated[str, typer.Option(help="Task name in the workspace.")] = "default",
    version: Annotated[
        int | None, typer.Option(help="Model version: its round, 0 the initial model (default: the latest).")
    ] = None,
    at_block: AtBlockOpt = None,
    fmt: FormatOpt = "both",
    out: OutOpt = None,
    verify: VerifyOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A model card: rounds, contributors by organization, purposes, DP guarantee, robustness, metrics, audit."""
    _emit(workspace, "model", {"task": task, "version": version}, at_block, fmt, out, verify, json_out)


@app.command("verify")
def verify_command(
    file: Annotated[Path, typer.Argument(help="A report file (HTML or PDF) written by `fedledger report`.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    json_out: JsonOpt = False,
) -> None:
    """Derive the report again from the chain and block the file names and compare; exit 13 at a difference."""
    _verify_file(workspace, file, json_out)


def _verify_file(
    workspace: Path, file: Path, json_out: bool, *, expect_kind: str | None = None, expect_block: int | None = None
) -> None:
    from fedledger.reports import derive_report, verify_report

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {file}: {exc}") from exc
    with open_workspace(workspace) as ws:

        def derive(header: ReportHeader) -> Report:
            if expect_kind is not None and header.kind != expect_kind:
                raise VerificationFailed(f"{file} is a {header.kind} report, not a {expect_kind} one")
            if expect_block is not None and header.block != expect_block:
                raise VerificationFailed(f"{file} was derived at block {header.block}, not at {expect_block}")
            chain_id = ws.chain.chain_id
            if header.provenance.get("chain_id") != chain_id:
                raise VerificationFailed(
                    f"{file} was derived from chain {header.provenance.get('chain_id')}; this workspace's is {chain_id}"
                )
            return derive_report(_snapshot(ws, header.block), header.kind, header.args)

        verified = verify_report(data, derive)
    _print_verified(file, verified, json_out)


def _print_verified(file: Path, verified: Verified, json_out: bool) -> None:
    header = verified.header
    if json_out:
        print_json(
            {
                "ok": True,
                "file": str(file),
                "kind": header.kind,
                "block": header.block,
                "chain_id": header.provenance["chain_id"],
                "facts_sha256": header.facts_sha256,
                "compared_by": verified.by,
            }
        )
        return
    how = "byte for byte" if verified.by == "bytes" else "by its text (rendered with other library versions)"
    console.print(
        f"[green]verified[/]: {file} is the {header.kind} report the ledger gives at block {header.block} "
        f"of chain {header.provenance['chain_id']}, {how}"
    )
