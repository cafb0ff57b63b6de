"""``fedledger data protect``: drop, pseudonymize or tokenize identifiers, generalize quasi-identifiers to
k-anonymity, check l-diversity and t-closeness, and write the protected table with its report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from fedledger.cli.common import AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.cli.data._app import app
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
    goal_file: Annotated[
        Path | None,
        typer.Option("--goal", help="The data's goal (from `fedledger data goal`); default: FILE.goal.json if any."),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Labels file (JSON lines); default: <workspace>/data/labels.jsonl."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Where to write the JSON report (default: OUT.report.json).")
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Protect FILE into OUT: one output row per input row, and a report of what was achieved.

    Each column's class is your label or --classes/policy class if given, else the classifier's (the more protective
    class when it is unsure), and identifier whenever the values validate as e-mails, phones, IBANs, card numbers
    or national ids. Columns the goal's purpose does not need are dropped."""
    # Imported here, not at module level: pandas and the anonymizers would slow every fedledger command's start.
    from fedledger.cli.data.scan import _classifier, _label_store
    from fedledger.data.goal import Goal, goal_path_for
    from fedledger.data.keys import org_data_key
    from fedledger.data.policy import ProtectionPolicy, parse_classes
    from fedledger.data.protect import ColumnClassification, ProtectionKeys, protect_file, report_path_for
    from fedledger.data.tabular import table_columns

    if out.resolve() == file.resolve():
        raise BadInput(f"{out}: refusing to overwrite the input file")
    policy = (ProtectionPolicy.from_toml(policy_file) if policy_file else ProtectionPolicy()).with_k(k)
    given = {
        name: ColumnClassification(column_class, 1.0, "command line")
        for name, column_class in parse_classes(classes or "").items()
    }
    unknown = [name for name in given if name not in table_columns(file)]
    if unknown:
        raise BadInput(f"--classes names column(s) not in {file}: {', '.join(map(repr, unknown))}")
    if goal_file is None and goal_path_for(file).exists():
        goal_file = goal_path_for(file)
    goal = Goal.load(goal_file) if goal_file is not None else None
    store = _label_store(workspace, labels, required=False)

    def keys(purposes: set[str]) -> ProtectionKeys:
        # The organization's keys come from the workspace keystore; opened only when a column needs one.
        with open_workspace(workspace) as ws:
            account = ws.account(as_key)
            return ProtectionKeys(
                pseudonymize=org_data_key(account, "pseudonymize") if "pseudonymize" in purposes else None,
                tokenize=org_data_key(account, "tokenize") if "tokenize" in purposes else None,
            )

    result = protect_file(
        file,
        out,
        policy,
        classes=given,
        labels=store.labels_for(file) if store is not None else {},
        classifier=lambda: _classifier(store)[0],  # fitted only if some column needs it
        goal=goal,
        keys=keys,
        report_path=report,
    )
    report_file = Path(report) if report is not None else report_path_for(out)
    if json_out:
        print_json(result.report | {"report": str(report_file)})
        return
    _print_summary(result, out, report_file)


def _print_summary(result: ProtectionResult, out: Path, report_file: Path) -> None:
    r = result.report
    console.print(f"wrote {out} ({r['rows']} rows, {r['columns_out']} of {r['columns_in']} columns) and {report_file}")
    source = r.get("source") or {}
    if source.get("format") == "csv":
        console.print(f"read {source['path']} as {source['encoding']}, delimiter {source['delimiter']!r}")
    if source.get("note"):
        console.print(f"[yellow]note:[/] {escape(source['note'])}")
    if r.get("goal"):
        goal, dropped = r["goal"], r["minimization"]["dropped"]
        console.print(
            f"goal {goal['purpose']} ({goal['lawful_basis']}, keep {goal['retention']}): "
            + (
                f"dropped {len(dropped)} column(s) it does not need: {', '.join(dropped)}"
                if dropped
                else "every column needed"
            ),
            highlight=False,
        )
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
        if entry.get("reason") == "minimization":
            continue
        unsure = ", unsure" if entry.get("unsure") else ""
        console.print(
            f"  {escape(column)}: {entry['class']} ({entry['class_source']}{unsure}, confidence "
            f"{entry['confidence']:.2f}) -> {entry['action']}",
            highlight=False,
        )
    for flag in r.get("flags", []):
        console.print(f"[yellow]flag:[/] {escape(flag)}")
