"""``fedledger data``: the vault, dataset registration and erasure.

fedledger data registry deploy | use ADDRESS     the consortium's DataRegistry
fedledger data vault import FILE --subject-column C --columns a,b [--out OUT]
fedledger data vault get SUBJECT --column C --record R
fedledger data register FILE --purpose P [--purpose P2] --classification F --policy F [--recipe R]
fedledger data datasets [--owner ADDRESS]
fedledger data erase SUBJECT [--dataset ID]
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer

from fedledger.chain.encoding import as_address
from fedledger.chain.registry import DataRegistryClient
from fedledger.cli.common import DEFAULT_WS, AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.cli.data._app import app
from fedledger.data.registration import Registrations, erase_subject, register_table
from fedledger.data.vault import Vault, vault_root
from fedledger.exceptions import BadInput
from fedledger.store.safejson import loads_shallow
from fedledger.workspace import Workspace

if TYPE_CHECKING:
    from fedledger.data.lawful_basis import LawfulBasis

__all__ = ["registry_app", "vault_app"]

vault_app = typer.Typer(help="Private values kept encrypted at rest, one key per data subject.", no_args_is_help=True)
registry_app = typer.Typer(help="The consortium's DataRegistry contract.", no_args_is_help=True)
app.add_typer(vault_app, name="vault")
app.add_typer(registry_app, name="registry")


def _vault(ws: Workspace, as_key: str | None) -> Vault:
    return Vault.for_account(vault_root(ws.root), ws.account(as_key))


def _registrations(ws: Workspace) -> Registrations:
    return Registrations(vault_root(ws.root) / "registrations.json")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path} is not a readable CSV table: {exc}") from exc


def _read_document(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc}") from exc
    try:
        # Any document may be given, so the depth bound is far above a real classification's; it only keeps a
        # hostile file from overflowing the C stack in json (a file refused here is committed by its bytes).
        return loads_shallow(raw, max_depth=1000)
    except ValueError:
        return raw  # not JSON: committed to by the hash of its bytes


@registry_app.command("deploy")
def registry_deploy(workspace: WorkspaceOpt = DEFAULT_WS, as_key: AsOpt = None, json_out: JsonOpt = False) -> None:
    """Deploy the consortium's data registry (an admin) and use it in this workspace."""
    with open_workspace(workspace) as ws:
        client = DataRegistryClient.deploy(ws.chain, ws.account(as_key), ws.consortium().address)
        ws.config.data_registry = client.address
        ws.save()
    if json_out:
        print_json({"data_registry": client.address})
    else:
        console.print(f"[green]Deployed[/] the data registry at {client.address}")


@registry_app.command("use")
def registry_use(
    address: Annotated[str, typer.Argument(help="The registry's address (another member deployed it).")],
    workspace: WorkspaceOpt = DEFAULT_WS,
) -> None:
    """Use an existing data registry of this workspace's consortium."""
    with open_workspace(workspace) as ws:
        client = DataRegistryClient(ws.chain, as_address(address, what="registry address"))
        if client.consortium_address != ws.consortium().address:
            raise BadInput(f"the registry at {address} belongs to another consortium ({client.consortium_address})")
        ws.config.data_registry = client.address
        ws.save()
    console.print(f"using the data registry at {client.address}")


@vault_app.command("import")
def vault_import(
    file: Annotated[Path, typer.Argument(help="CSV table with a header row.")],
    subject_column: Annotated[str, typer.Option(help="Column naming each row's data subject.")],
    columns: Annotated[str, typer.Option(help="Private columns to seal, comma-separated.")] = "",
    out: Annotated[Path | None, typer.Option(help="Protected table to write (default FILE.protected.csv).")] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Seal the subject column and the private columns in the vault; write the table with vault
    references in their place (record ids are the rows' positions)."""
    table = _read_table(file)
    private = [c.strip() for c in columns.split(",") if c.strip()]
    target = out or file.with_suffix(".protected.csv")
    with open_workspace(workspace) as ws:
        vault = _vault(ws, as_key)
        protected = vault.import_table(table, subject_column, private)
        subjects = vault.subject_count()
    protected.to_csv(target, index=False)
    sealed = [subject_column, *private]
    if json_out:
        print_json(
            {"protected": str(target), "rows": len(protected), "sealed_columns": sealed, "vault_subjects": subjects}
        )
    else:
        console.print(f"[green]Sealed[/] {len(protected)} rows ({', '.join(sealed)}) -> {target}")


@vault_app.command("get")
def vault_get(
    subject: Annotated[str, typer.Argument(help="The data subject's id.")],
    column: Annotated[str, typer.Option(help="The column.")],
    record: Annotated[str, typer.Option(help="The record id (row position in the imported file).")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print one sealed value (this organization only; fails once the subject is erased)."""
    with open_workspace(workspace) as ws:
        value = _vault(ws, as_key).get(subject, column, record)
    if json_out:
        print_json({"column": column, "record": record, "value": value})
    else:
        console.print(value, highlight=False, markup=False)


@app.command("register")
def register(
    file: Annotated[Path, typer.Argument(help="The protected CSV table (from `fedledger data vault import`).")],
    purpose: Annotated[list[str], typer.Option(help="A purpose of processing, e.g. model-training:heart-disease.")],
    classification: Annotated[Path, typer.Option(help="The column classification (JSON), committed by hash.")],
    policy: Annotated[Path, typer.Option(help="The privacy policy applied (any file), committed by hash.")],
    recipe: Annotated[
        Path | None,
        typer.Option(help="The preparation recipe the data is prepared with; its hash is committed with the policy."),
    ] = None,
    goal: Annotated[
        Path | None,
        typer.Option(
            help="The data's goal (`fedledger data goal`; default: FILE.goal.json if any): its purpose must be "
            "registered and the table hold only the columns it needs; its hash is recorded."
        ),
    ] = None,
    lawful_basis: Annotated[
        str | None,
        typer.Option(
            help="GDPR Art. 6(1) basis (consent, contract, legal-obligation, vital-interests, public-task, "
            "legitimate-interests), recorded in the policy document committed."
        ),
    ] = None,
    special_category_condition: Annotated[
        str,
        typer.Option(
            help="For health and other special-category data, the GDPR Art. 9(2) condition "
            "(explicit-consent, health-care, public-health, scientific-research)."
        ),
    ] = "",
    retention: Annotated[str, typer.Option(help="How long the data is kept (recorded with the lawful basis).")] = "",
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a protected table on the ledger: its salted Merkle root, schema, classification,
    policy and purposes. It commits to the file as given: register the protected table, never the
    raw one (the root is salted and stays off chain with the salt either way). With --recipe, the
    policy committed is {"policy": <the policy>, "preparation_recipe": <the recipe's hash>}. With --lawful-basis it
    also holds {"gdpr": {"lawful_basis": ..., "purposes": [...], ...}}. The classification and policy are published
    to the workspace's store, where compliance reports (`fedledger report gdpr`) read them by their hashes."""
    from fedledger.data.goal import Goal, goal_path_for

    basis = _lawful_basis(lawful_basis, special_category_condition, retention)

    table = _read_table(file)
    if goal is None and goal_path_for(file).exists():
        goal = goal_path_for(file)
    declared = Goal.load(goal) if goal is not None else None
    documents, recipe_hash = _registration_documents(classification, policy, recipe)
    with open_workspace(workspace) as ws:
        registry = ws.data_registry(ws.account(as_key))
        registered = register_table(
            registry,
            table,
            purposes=purpose,
            classification=documents[0],
            policy=documents[1],
            registrations=_registrations(ws),
            goal=declared,
            recipe_hash=recipe_hash or "",
            lawful_basis=basis,
            store=ws.store(),
        )
    public = {k: v for k, v in registered.to_json().items() if k not in ("salt", "subjects")}
    if json_out:
        print_json(public)
    else:
        console.print(f"[green]Registered[/] dataset {registered.dataset_id}: {registered.rows} rows")
        console.print(f"  commitment: {registered.commitment}")
        console.print(f"  purposes:   {', '.join(registered.purposes)}")
        if recipe_hash is not None:
            console.print(f"  recipe:     {recipe_hash}")
        if declared is not None:
            console.print(f"  goal:       {declared.purpose} ({registered.goal_hash})")


def _lawful_basis(basis: str | None, condition: str, retention: str) -> LawfulBasis | None:
    from fedledger.data.lawful_basis import LawfulBasis

    if basis:
        return LawfulBasis(basis, condition, retention)
    if condition or retention:
        raise BadInput("--special-category-condition and --retention are recorded with a --lawful-basis: give one")
    return None


def _registration_documents(
    classification: Path, policy: Path, recipe: Path | None
) -> tuple[tuple[Any, Any], str | None]:
    """The classification and policy documents to commit, and the recipe's hash (committed inside the policy)."""
    documents = _read_document(classification), _read_document(policy)
    if recipe is None:
        return documents, None
    from fedledger.data.prepare import Recipe

    recipe_hash = Recipe.load(recipe).hash()  # the hash a task config's preparation commits to
    raw = documents[1]
    # A policy that is not JSON is committed by the hash of its bytes, as without a recipe.
    inner = {"sha256": hashlib.sha256(raw).hexdigest()} if isinstance(raw, bytes) else raw
    return (documents[0], {"policy": inner, "preparation_recipe": recipe_hash}), recipe_hash


@app.command("datasets")
def datasets(
    owner: Annotated[str | None, typer.Option(help="Only this owner's datasets (default: all).")] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    json_out: JsonOpt = False,
) -> None:
    """List registered datasets."""
    with open_workspace(workspace) as ws:
        registry = ws.data_registry()
        ids = registry.datasets_of(owner) if owner else list(range(1, registry.dataset_count + 1))
        infos = [registry.dataset(i) for i in ids]
    if json_out:
        print_json([i.to_json() for i in infos])
        return
    for info in infos:
        console.print(
            f"{info.dataset_id}: {info.status.name.lower()} owner={info.owner} rows={info.rows} "
            f"purposes={len(info.purposes)} erasures={info.erasures}"
        )


@app.command("erase")
def erase(
    subject: Annotated[str, typer.Argument(help="The data subject's id.")],
    dataset: Annotated[
        list[int] | None,
        typer.Option(help="Record the erasure for this dataset (default: every registered dataset holding them)."),
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Erase a data subject (GDPR Art. 17): destroy their data key, so their values cannot be
    decrypted anywhere, and record the erasure on the ledger under a keyed hash."""
    with open_workspace(workspace) as ws:
        account = ws.account(as_key)
        registry = ws.data_registry(account) if ws.config.data_registry else None
        outcome = erase_subject(
            _vault(ws, as_key),
            subject,
            registry=registry,
            registrations=_registrations(ws),
            dataset_ids=dataset,
        )
    if json_out:
        print_json(outcome.to_json())
        return
    console.print(f"[green]Erased[/]: {outcome.receipt.values} values can no longer be decrypted")
    for dataset_id, tx_hash in outcome.recorded:
        console.print(f"  recorded on the ledger for dataset {dataset_id} ({tx_hash})")
    if registry is None or not (outcome.recorded or outcome.already_recorded):
        console.print("  no registered dataset holds this subject: nothing recorded on the ledger")
