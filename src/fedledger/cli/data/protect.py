"""``fedledger data protect``: drop, pseudonymize or tokenize identifiers, generalize quasi-identifiers to
k-anonymity, check l-diversity and t-closeness, and write the protected table with its report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fedledger.cli.common import AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.cli.data import app
from fedledger.exceptions import BadInput
from fedledger.workspace import DEFAULT_WORKSPACE

if TYPE_CHECKING:
    from fedledger.data.protect import ProtectionResult

__all__ = ["protect"]


@app.command()
def protect(
    file: Annotated[Path, typer.Argument(help="The table to protect (CSV or Parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the protected table (.csv or .parquet).")],
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="Policy TOML: per-column actions, k, l, t, hierarchies.")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, help="k-anonymity (overrides the policy; default 5).")] = None,
    classes: Annotated[
        str | None,
        typer.Option("--classes", help="Column classes, e.g. 'ssn=identifier,age=quasi_identifier,income=sensitive'."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Where to write the JSON report (default: OUT.report.json).")
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Protect FILE into OUT: one output row per input row, and a report of what was achieved."""
    # Imported here, not at module level: pandas and the anonymizers would slow every fedledger command's start.
    from fedledger.data.keys import org_data_key
    from fedledger.data.policy import ProtectionPolicy, parse_classes
    from fedledger.data.protect import (
        ColumnClassification,
        ProtectionKeys,
        ProtectionResult,
        needed_keys,
        protect_frame,
        resolve_classes,
        write_result,
    )
    from fedledger.data.tabular import read_table

    if out.resolve() == file.resolve():
        raise BadInput(f"{out}: refusing to overwrite the input file")
    policy = (ProtectionPolicy.from_toml(policy_file) if policy_file else ProtectionPolicy()).with_k(k)
    frame = read_table(file, as_text=True)
    given = {
        name: ColumnClassification(column_class, 1.0, "command line")
        for name, column_class in parse_classes(classes or "").items()
    }
    policy.check_columns(frame.columns)
    unknown = [name for name in given if name not in frame.columns]
    if unknown:
        raise BadInput(f"--classes names column(s) not in {file}: {', '.join(map(repr, unknown))}")
    undeclared = [
        c for c in frame.columns if c not in given and (c not in policy.columns or not policy.columns[c].column_class)
    ]
    if undeclared:
        # Columns nobody classified: the column classifier decides, and the report names it as the source
        # with its confidence (nothing is classified silently).
        from fedledger.data.classify.scan import scan_table

        for column in scan_table(file).columns:
            if column.name in undeclared:
                given[column.name] = ColumnClassification(column.label, column.confidence, "classifier")  # type: ignore[arg-type]
    resolved = resolve_classes(frame.columns, policy, given)
    purposes = needed_keys(policy, resolved)
    keys = ProtectionKeys()
    if purposes:
        # The organization's keys come from the workspace keystore; open it only when a column needs one.
        with open_workspace(workspace) as ws:
            account = ws.account(as_key)
            keys = ProtectionKeys(
                pseudonymize=org_data_key(account, "pseudonymize") if "pseudonymize" in purposes else None,
                tokenize=org_data_key(account, "tokenize") if "tokenize" in purposes else None,
            )
    result = protect_frame(frame, policy, classes=resolved, keys=keys)
    result = ProtectionResult(result.frame, dict(result.report, input=str(file), output=str(out)))
    report_file = write_result(result, out, report_path=report)
    if json_out:
        print_json(result.report | {"report": str(report_file)})
        return
    _print_summary(result, out, report_file)


def _print_summary(result: ProtectionResult, out: Path, report_file: Path) -> None:
    r = result.report
    console.print(f"wrote {out} ({r['rows']} rows, {r['columns_out']} of {r['columns_in']} columns) and {report_file}")
    console.print(
        f"k = {r['k']['achieved']} (target {r['k']['target']}), {r['equivalence_classes']} equivalence classes, "
        f"NCP {r['ncp_percent']:.2f} % ({r['mode']} Mondrian)"
    )
    for name in ("l", "t"):
        entry = r[name]
        if entry["achieved"]:
            target = "no target" if entry["target"] is None else f"target {entry['target']}, met: {entry['met']}"
            console.print(f"{name}: {entry['achieved']} ({target})")
    for column, entry in r["columns"].items():
        note = f"  [yellow]{entry['warning']}[/]" if "warning" in entry else ""
        console.print(
            f"  {column}: {entry['class']} ({entry['class_source']}, confidence {entry['confidence']:.2f}) "
            f"-> {entry['action']}{note}",
            highlight=False,
        )
