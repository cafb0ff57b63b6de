"""``fedledger demo``: a consortium of hospitals training on the ledger, end to end."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fedledger.cli.common import JsonOpt, console, err_console, print_json
from fedledger.cli.demo_masked import print_masked_summary
from fedledger.demo_masked_options import UNCLIPPED_BOOST, check_masked_choices
from fedledger.exceptions import BadInput, ConfigError, VerificationFailed

if TYPE_CHECKING:
    from fedledger.demo import DemoResult


WorkspaceDirOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="Folder for the demo workspace (default: a new temp dir)."),
]
MembersOpt = Annotated[int, typer.Option(help="Number of hospitals.")]
RoundsOpt = Annotated[int, typer.Option(help="Training rounds.")]
AttackOpt = Annotated[
    str,
    typer.Option(
        help="Attack of the malicious hospitals: NAME or NAME:key=value,... (a+b composes), "
        "e.g. sign-flip, alie, fang-trim:mode=std, backdoor:target_label=1,boost=5, sign-flip+lying-validators."
    ),
]
MaliciousOpt = Annotated[int, typer.Option(help="How many hospitals are malicious.")]
FreeRidersOpt = Annotated[
    int,
    typer.Option(
        "--free-riders",
        min=0,
        help="How many hospitals free-ride (send the global model back, train nothing); the rewards table shows "
        "they earn nothing (validated rounds only).",
    ),
]
RuleOpt = Annotated[
    str,
    typer.Option(
        help="Aggregation rule in validated rounds: auto (the profile's: median for few silos, centered-clipping "
        "for a consortium; the robustness benchmark's choices), fedavg, median, trimmed-mean, krum, multi-krum, "
        "bulyan, fltrust-median, ...; secure rounds only sum (fedavg)."
    ),
]
ProfileOpt = Annotated[
    str,
    typer.Option(
        help="Defaults for the robustness settings (fedledger.federation.config.PROFILES): few-silos (a "
        "handful of members that all train every round, as here: coordinate-wise median, clipping to the "
        "median norm, trainer reputation) or consortium (many members sampled each round: centered clipping)."
    ),
]
CommitteeOpt = Annotated[
    int, typer.Option(help="Validators drawn on chain to score each update (0: every validator scores all).")
]
ScoringOpt = Annotated[
    str,
    typer.Option(
        help="Validators' scoring rule in validated rounds: relative (accuracy change on the validator's "
        "data; suits this data set, which converges in the first round) or trust (cosine with the "
        "validator's own update; the task default, chosen by the robustness benchmark for non-IID "
        "training from scratch) or relative-loss (validation cross-entropy change; it does not saturate at "
        "convergence but also rejects more honest updates)."
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Seed for the data split and training.")]
DpEpsilonOpt = Annotated[
    float,
    typer.Option(
        "--dp-epsilon",
        min=0.0,
        help="Differential privacy with this epsilon budget per hospital over the task (delta 1e-5), spent in "
        "--dp-mode; the contract refuses any declared spend above it. 0 turns DP off.",
    ),
]
DpModeOpt = Annotated[
    str,
    typer.Option(
        "--dp-mode",
        help="What DP protects: auto (the profile's: sample for few-silos, client for a consortium), sample "
        "(record-level DP-SGD: each patient of a hospital; updates stay readable, so validators still screen "
        "them) or client (member-level DP-FedAvg: a whole hospital's contribution; pair it with "
        "--secure-aggregation, which is what lets each member add only a share of the noise).",
    ),
]
SecureAggregationOpt = Annotated[
    bool,
    typer.Option(
        "--secure-aggregation/--no-secure-aggregation",
        help="Mask every update (Bonawitz et al. secure aggregation): no one sees an individual update, "
        "so per-update validation is off and the malicious hospital is not screened (unless --masked-checks). "
        "Off by default.",
    ),
]
MaskedChecksOpt = Annotated[
    bool,
    typer.Option(
        "--masked-checks/--no-masked-checks",
        help="With --secure-aggregation: a committee of 3 aggregators (each an MPyC party in its own process) "
        "checks every masked update's L2 norm against the task's bound on secret shares; only the pass/fail bit "
        "per update and the sum of the passing ones are revealed, and the contract aggregates the passing set. "
        'Needs MPyC: pip install "fedledger[mpc]".',
    ),
]
MaskedMinCosineOpt = Annotated[
    float | None,
    typer.Option(
        "--masked-min-cosine",
        min=0.0,
        max=0.999,
        help="With --masked-checks: also reject a masked update whose cosine with the reference "
        "(--masked-reference) is below this (no direction check by default).",
    ),
]
MaskedReferenceOpt = Annotated[
    str,
    typer.Option(
        "--masked-reference",
        help="With --masked-min-cosine: compare with each check-committee member's own reference update, a "
        "majority deciding (committee: trained on its validation data, its private input), or with the previous "
        "round's global update (previous).",
    ),
]
UnclippedOpt = Annotated[
    int | None,
    typer.Option(
        "--unclipped",
        min=0,
        help=f"With --masked-checks: how many hospitals skip clipping and send their update boosted "
        f"{UNCLIPPED_BOOST}x, an attack the norm check catches (default 1 with --masked-checks).",
    ),
]


def demo(
    workspace: WorkspaceDirOpt = None,
    members: MembersOpt = 5,
    rounds: RoundsOpt = 8,
    attack: AttackOpt = "sign-flip",
    malicious: MaliciousOpt = 1,
    free_riders: FreeRidersOpt = 0,
    rule: RuleOpt = "auto",
    profile: ProfileOpt = "few-silos",
    committee: CommitteeOpt = 0,
    scoring: ScoringOpt = "relative",
    seed: SeedOpt = 7,
    dp_epsilon: DpEpsilonOpt = 8.0,
    dp_mode: DpModeOpt = "auto",
    secure_aggregation: SecureAggregationOpt = False,
    masked_checks: MaskedChecksOpt = False,
    masked_min_cosine: MaskedMinCosineOpt = None,
    masked_reference: MaskedReferenceOpt = "committee",
    unclipped: UnclippedOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a breast-cancer diagnosis model across hospitals on the ledger, then audit it. By default validators
    screen every update, each hospital's patients are protected by record-level DP (epsilon 8), and the task pays
    each hospital by its measured contribution."""
    from fedledger.demo import run_demo

    _check_choices(attack=attack, rule=rule, scoring=scoring, profile=profile, workspace=workspace, dp_mode=dp_mode)
    if unclipped is None:
        unclipped = 1 if masked_checks else 0
    if masked_min_cosine is not None and not masked_checks:
        raise ConfigError("--masked-min-cosine sets a masked check: add --masked-checks")
    check_masked_choices(masked_checks=masked_checks, secure_aggregation=secure_aggregation, unclipped=unclipped)
    out = err_console if json_out else console
    with out.status("running the consortium...", spinner="dots"):
        result = run_demo(
            workspace=workspace,
            members=members,
            rounds=rounds,
            attack=attack if malicious else "none",
            malicious=malicious,
            rule=rule,
            committee=committee,
            scoring=scoring,
            seed=seed,
            dp_epsilon=dp_epsilon or None,
            secure_aggregation=secure_aggregation,
            profile=profile,
            free_riders=free_riders,
            dp_mode=dp_mode,
            masked_checks=masked_checks,
            masked_min_cosine=masked_min_cosine,
            masked_reference=masked_reference,
            unclipped=unclipped,
            on_round=_round_printer(out),
        )
    data = result.to_json()
    if json_out:
        print_json(data)
    else:
        _print_summary(result, data, attack=attack, secure_aggregation=secure_aggregation)
    if not result.verification["ok"]:
        raise VerificationFailed(result.verification["first_discrepancy"])


def _check_choices(*, attack: str, rule: str, scoring: str, profile: str, workspace: Path | None, dp_mode: str) -> None:
    """Refuse an unknown attack, rule, scoring rule, profile or DP mode (ConfigError) before anything is created."""
    from fedledger.attacks import parse_attack
    from fedledger.federation.config import DP_MODES, PROFILES, ledger_rules
    from fedledger.learning.scoring import SCORING_RULES

    if dp_mode not in DP_MODES:
        raise ConfigError(f"unknown DP mode {dp_mode!r} (--dp-mode); known: {', '.join(DP_MODES)}")
    parse_attack(attack)  # an unknown name or bad parameter fails (ConfigError) before anything is created
    if rule != "auto" and rule not in ledger_rules():
        raise ConfigError(f"unknown aggregation rule {rule!r}; known: {', '.join(ledger_rules())}")
    if scoring not in SCORING_RULES:
        raise ConfigError(f"unknown scoring rule {scoring!r}; known: {', '.join(SCORING_RULES)}")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    if workspace is not None and (workspace / "config.json").exists():
        raise BadInput(f"{workspace} already holds a workspace; pick a new folder for the demo")


def _round_printer(out: Console) -> Callable[[dict[str, Any]], None]:
    """The callback that prints each round as it ends."""

    def on_round(row: dict[str, Any]) -> None:
        accepted = ", ".join(row["accepted"]) or "none"
        verb = "accepted" if row.get("screened", True) else "aggregated unscreened"
        out.print(
            f"[bold]round {row['round']}[/] {row['phase']}: test accuracy [cyan]{row['accuracy']:.3f}[/], "
            f"{verb} {len(row['accepted'])}/{row['updates']} ({accepted})"
        )
        if row.get("abort_reason"):
            out.print(f"    [red]aborted[/]: {row['abort_reason']}")
        for rej in row["rejected"]:
            check = f" ({rej['check']})" if "check" in rej else ""
            out.print(f"    [red]rejected[/] {rej['member']}: {rej['reason']}{check}")
        for member, outcome in row.get("malicious_kept_out", {}).items():
            if outcome.startswith("left out"):
                out.print(f"    [red]left out[/] {member}: distrusted as a trainer by its record, sent no update")

    return on_round


def _print_summary(result: DemoResult, data: Mapping[str, Any], *, attack: str, secure_aggregation: bool) -> None:
    privacy = result.privacy
    spent = {m["member"]: f"{m['epsilon']:.4g}" for m in privacy["members"]}
    table = Table("member", "examples", "behavior", "dataset", "identifiers dropped", "epsilon", title="Consortium")
    for m, d in zip(result.members, result.datasets, strict=True):
        table.add_row(
            m["name"],
            str(m["examples"]),
            m["behavior"],
            str(d["dataset_id"]),
            ", ".join(d["dropped_identifiers"]) or "none",
            spent.get(m["name"], "-"),
        )
    console.print(table)
    _print_privacy(privacy, spent)
    console.print(f"final federated accuracy   [bold cyan]{result.final_accuracy:.3f}[/]")
    console.print(f"centralized (pooled data)  [bold]{result.centralized_accuracy:.3f}[/]")
    rejected = data["rejected"]
    if result.setup.get("masked_checks"):
        print_masked_summary(console, result.setup, result.screening, result.rounds)
    elif secure_aggregation:
        console.print("secure aggregation         [bold]on[/]: every update was masked; no one saw one in clear")
        bad = [m["name"] for m in result.members if m["malicious"]]
        unscreened = (
            f"{', '.join(bad)} ({attack}) was NOT screened out: its updates are in every model"
            if bad
            else "no update was screened"
        )
        console.print(f"per-update validation      [bold red]OFF[/] (masked updates cannot be scored): {unscreened}")
        console.print(f"malformed masked updates   {len(rejected)} dropped")
    else:
        console.print(f"rejected updates           {len(rejected)}")
        console.print(_screening_line(result.screening))
        console.print(_robustness_line(result.setup))
    _print_rewards(result.incentives, result.members)
    v = result.verification
    verdict = "[green]verified[/]" if v["ok"] else f"[red]FAILED[/]: {v['first_discrepancy']}"
    console.print(
        f"audit verify               {verdict} ({v['rounds_checked']} rounds, {v['updates_checked']} updates, "
        f"{v['models_checked']} models)"
    )
    console.print(
        f"workspace                  {result.workspace}  (try `fedledger audit verify -w {result.workspace}`)"
    )
    console.print(f"time                       {result.seconds:.1f} s")


def _print_rewards(incentives: Mapping[str, Any], members: list[dict[str, Any]]) -> None:
    """Each hospital's settled contributions and rewards, or why there are none."""
    if not incentives.get("measured"):
        console.print(f"rewards                    not measured: {incentives.get('reason', 'no incentives')}")
        return
    behavior = {m["name"]: m["behavior"] for m in members}
    table = Table(
        "member", "behavior", "contribution per round (bps)", "earned", "stake", "slashed",
        title=f"Rewards ({incentives['method']}, {_units(incentives['reward_per_round'])} a round)",
    )  # fmt: skip
    for m in incentives["members"]:
        per_round = " ".join("-" if c is None else str(c) for c in m["contributions"].values())
        table.add_row(
            m["member"], behavior.get(m["member"], "?"), per_round, _units(m["earned"]), _units(m["stake"]),
            _units(m["slashed"]),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"reward pool                funded {_units(incentives['funded'])}, paid {_units(incentives['paid_out'])}, "
        f"slashed into it {_units(incentives['slashed'])}, left {_units(incentives['pool_left'])}"
    )
    if incentives.get("caveat"):
        console.print(f"[yellow]rewards under DP[/]           {incentives['caveat']}")


def _units(wei: int) -> str:
    """An amount of the dev chain's currency in whole units (wei / 10^18)."""
    return f"{wei / 10**18:.4f}"


def _print_privacy(privacy: Mapping[str, Any], spent: Mapping[str, str]) -> None:
    if not privacy["dp"]:
        console.print("differential privacy       off (on by default: --dp-epsilon 8)")
        return
    budget = f"budget epsilon {privacy['budget_epsilon']:g} per hospital at delta {privacy['delta']:g}"
    largest = f"largest spend {max(spent.values(), key=float, default='0')}"
    if privacy["mode"] == "sample":
        sigmas = [m["noise_multiplier"] for m in privacy["members"] if "noise_multiplier" in m]
        console.print(
            f"differential privacy       record-level (DP-SGD: each example's gradient clipped to "
            f"{privacy['max_grad_norm']:g}, noise multiplier {min(sigmas):.3f}-{max(sigmas):.3f} by hospital size), "
            f"{budget}; {largest} ({privacy['accountant']})"
        )
        return
    console.print(
        f"differential privacy       client-level, {budget} (noise multiplier {privacy['noise_multiplier']:.3f}); "
        f"{largest}"
        + (
            f", noise split into {privacy['noise_shares']} shares (secure aggregation)"
            if privacy.get("noise_shares", 1) > 1
            else ""
        )
    )


def _screening_line(screening: Mapping[str, Any]) -> str:
    """Whether every malicious hospital was kept out of every round's model, and how."""
    rounds = screening.get("rounds", [])
    if not screening.get("malicious"):
        return "malicious hospitals        none"
    how: dict[str, list[str]] = {}
    for row in rounds:
        for member, outcome in row.items():
            if member != "round":
                how.setdefault(f"{member} {outcome}", []).append(str(row["round"]))
    detail = "; ".join(f"{what} in round(s) {', '.join(r)}" for what, r in how.items())
    verdict = (
        "[green]kept out of every round's model[/]"
        if screening["attackers_kept_out_every_round"]
        else "[red]NOT kept out of every round[/]"
    )
    return f"malicious hospitals        {verdict} ({detail})"


def _robustness_line(row: Mapping[str, Any]) -> str:
    """The validated rounds' robustness settings, in one line."""
    mean_bound = row["min_mean_score"]
    return (
        f"{'robustness (' + row['profile'] + ')':<27}{row['scoring']} scoring"
        + (" (short updates at the median norm)" if row["score_at_median_norm"] else "")
        + (", centred on each validator's round median" if row.get("center_scores") else "")
        + f", {row['rule']}"
        + _median_norm_scaling(bool(row["clip_to_median_norm"]), bool(row["lift_to_median_norm"]))
        # The demo's hospitals register their datasets: no update may declare more rows than registered.
        + ", example counts held to the registered rows"
        + (" and capped at the median" if row["cap_examples_to_median"] else "")
        + (f", trainer reputation {row['max_rejection']} bps" if row["max_rejection"] else "")
        + (f", trainers left out below a mean score of {mean_bound}" if mean_bound else "")
    )


def _median_norm_scaling(clip: bool, lift: bool) -> str:
    """How accepted updates are scaled to the round's median norm before the rule, as a clause of the summary."""
    if clip and lift:
        return ", every update scaled to the median norm"
    if clip:
        return ", clipping to the median norm"
    return ", short updates lifted to the median norm" if lift else ""
