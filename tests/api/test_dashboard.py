"""The dashboard in a real headless Chromium (Selenium, the system's chromium and chromedriver): sign-in, and the
numbers it shows equal to the chain's, over a finished demo and over a task that runs while the page is open.

Skipped when chromium or chromedriver is not installed (Debian: ``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import hospital_datas
from fedledger.api import create_app
from fedledger.workspace import ChainSpec, Workspace
from helpers.api import AUDITOR_TOKEN, ERASED_SUBJECT, PASSWORD, Demo, served, shared_demo, sign_in

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (the test extra has it)")
from selenium.webdriver.common.by import By  # noqa: E402

WAIT = 60.0


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("chromium and chromedriver not installed: apt-get install -y chromium chromium-driver")
    return browser, driver


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return shared_demo(tmp_path_factory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    binary, driver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def _wait(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # the element is not there yet, or was replaced while read
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _text(browser: Any, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def _sign_in(browser: Any, url: str, token: str) -> None:
    browser.get(url)
    _wait(lambda: browser.find_element(By.ID, "signin").is_displayed(), "the sign-in form")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin-button").click()


_READ_PAGE = """
const q = (css) => [...document.querySelectorAll(css)];
const field = (row, name) => row.querySelector(`[data-field=${name}]`).textContent;
return {
  points: q("svg circle").map((c) => [c.closest("svg").id, c.dataset.series, Number(c.dataset.round), c.dataset.value]),
  pooled: q('#metrics-table tr[data-member="pooled"]').map((r) => [Number(r.dataset.round), field(r, "accuracy")]),
  updates: q("#updates-table tbody tr").map((r) => [Number(r.dataset.round), r.dataset.member, r.dataset.status,
    field(r, "reason")]),
  lineage: q("#lineage-tree details").map((d) => [Number(d.dataset.round),
    q(`#lineage-tree details[data-round="${d.dataset.round}"] li[data-update]`).map((li) => li.dataset.update)]),
  epsilon: q("#privacy-table tbody tr").map((r) => [r.dataset.member, field(r, "epsilon")]),
  earned: q("#rewards-table tbody tr").map((r) => [r.dataset.member, field(r, "earned")]),
  erasures: q("#datasets-table tbody tr").map((r) => [Number(r.dataset.dataset), field(r, "erasures")]),
  members: q("#members-table tbody tr").length,
  latest: document.querySelector("[data-field=latest_model]").textContent,
};
"""


def _expected(ws: Workspace, demo: Demo) -> dict[str, Any]:
    """What the page must show, read from the chain and the store before the server shares the chain."""
    from fedledger.federation.evaluation import round_metrics, task_bulletin
    from fedledger.privacy.accounting import micro_to_epsilon

    task, store = ws.task(), ws.store()
    bulletin = task_bulletin(task, store)
    points, pooled = set(), []
    for r in (0, 1, 2):
        result = round_metrics(task, bulletin, store, r)
        pooled.append([r, f"{result['pooled'].accuracy:.4f}"])
        for series, m in [("pooled", result["pooled"]), *result.members.items()]:
            points |= {("chart-accuracy", series, r, m.accuracy), ("chart-loss", series, r, m.log_loss)}
    updates, lineage = {}, []
    for r in (1, 2):
        accepted = task.round(r).accepted
        updates |= {(r, u.member): "accepted" if u.index in accepted else "rejected" for u in task.updates(r)}
        lineage.append([r, [u.update_hash for u in task.updates(r) if u.index in accepted]])
    incentives, registry = _incentives(ws), _registry(ws)
    return {
        "points": points,
        "pooled": pooled,
        "updates": updates,
        "lineage": lineage,
        "epsilon": {a: f"{micro_to_epsilon(task.privacy_spent(a)):.4f}" for a in demo.addresses.values()},
        "earned": {
            m.address: f"{int(ws.chain.call(incentives.contract.functions.earned(m.address))) / 1e18:.4f}"
            for m in ws.consortium().members()
        },
        "erasures": {d: str(int(registry.is_erased(d, ERASED_SUBJECT))) for d in range(1, registry.dataset_count + 1)},
        "members": len(ws.consortium().members()),
        "latest": task.latest_model,
    }


def test_a_finished_demo(browser: Any, demo: Demo) -> None:
    with Workspace.load(demo.root) as ws:
        expected = _expected(ws, demo)
        member = ws.account("hospital-1", PASSWORD)
        with served(create_app(ws, auditor_token=AUDITOR_TOKEN)) as url:
            # Signed out, or with a wrong token: the sign-in form, an error, and no data.
            _sign_in(browser, url, "not-a-token")
            _wait(lambda: "unknown or expired" in _text(browser, "#signin-error"), "the sign-in error")
            assert not browser.find_element(By.ID, "dashboard").is_displayed()
            assert browser.find_elements(By.CSS_SELECTOR, "#overview-fields dd") == []
            assert url.removeprefix("http://") in _text(browser, "#login-command")

            with httpx.Client(base_url=url) as client:
                token = sign_in(client, member).json()["token"]
            _sign_in(browser, url, token)
            _wait(lambda: _text(browser, "#audit-status") == "verified", "the audit")
            assert _text(browser, "[data-field=rounds_finalized]") == "2" and "Hospital 1" in _text(browser, "#who")
            page = browser.execute_script(_READ_PAGE)

            # Signing out forgets the token: back to the form.
            browser.find_element(By.ID, "signout").click()
            _wait(lambda: browser.find_element(By.ID, "signin").is_displayed(), "the sign-in form after signing out")
            assert browser.execute_script("return window.sessionStorage.getItem('fedledger.token')") is None

    assert {(svg, series, r, float(value)) for svg, series, r, value in page["points"]} == expected["points"]
    assert page["pooled"] == expected["pooled"]
    assert {(r, member): status for r, member, status, _ in page["updates"]} == expected["updates"]
    reasons = [reason for _, _, status, reason in page["updates"] if status == "rejected"]
    assert reasons and all("below the threshold" in reason for reason in reasons)
    assert [[r, sorted(hashes)] for r, hashes in page["lineage"]] == [[r, sorted(h)] for r, h in expected["lineage"]]
    assert dict(page["epsilon"]) == expected["epsilon"] and dict(page["earned"]) == expected["earned"]
    assert dict(page["erasures"]) == expected["erasures"] and "1" in expected["erasures"].values()
    assert page["members"] == expected["members"] and page["latest"] == expected["latest"]


def _incentives(ws: Workspace) -> Any:
    from fedledger.chain.incentives import IncentivesClient

    return IncentivesClient(ws.chain, ws.task().params().stake_gate)


def _registry(ws: Workspace) -> Any:
    from fedledger.chain.registry import DataRegistryClient

    return DataRegistryClient(ws.chain, ws.task().params().data_registry)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Workspace, Any]]:
    """A consortium on a served chain, its task deployed and no round run yet: (the operator's workspace, the
    simulated consortium whose nodes the test runs)."""
    from fedledger.chain.server import serve_chain
    from fedledger.federation import TaskConfig
    from fedledger.federation.setup import create_consortium

    config = TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=1,
        local_epochs=1,
        min_commitments=2,
        proposal_quorum=2,
        clip_norm=5.0,
    )
    with serve_chain(tmp_path / "chain", port=0, block_time=5.0) as chain:
        ws = Workspace.create(tmp_path / "ws", chain=ChainSpec(kind="rpc", url=chain.url), scrypt_n=2**14)
        with ws:
            yield ws, create_consortium(ws, config=config, datas=hospital_datas(tmp_path, 2), password="pw")


def test_a_running_task_updates_live(browser: Any, running: tuple[Workspace, Any]) -> None:
    from fedledger.federation import Simulation
    from fedledger.federation.evaluation import post_round_metrics, round_metrics, task_bulletin

    ws, sim = running
    bulletin = task_bulletin(sim.task, sim.store)

    def post_metrics(info: Any) -> None:
        for node in sim.nodes:
            post_round_metrics(
                sim.task, bulletin, sim.store, node.account, info.round_id, node.data.X_val, node.data.y_val
            )

    failures: list[BaseException] = []

    def run() -> None:
        try:
            Simulation(sim.task, sim.nodes, on_round_closed=post_metrics).run()
        except BaseException as exc:  # surfaced by the test below
            failures.append(exc)

    with Workspace.load(ws.root) as server_ws, served(create_app(server_ws, auditor_token=AUDITOR_TOKEN)) as url:
        _sign_in(browser, f"{url}/?poll=250&refresh=1000", AUDITOR_TOKEN)
        _wait(lambda: _text(browser, "[data-field=current_round]") == "0", "the task before its first round")
        assert _text(browser, "#who") == "auditor" and _text(browser, "#metrics-table tbody") == ""
        browser.execute_script("window.stillTheSamePage = true")
        first_block = int(
            _wait(lambda: browser.find_element(By.ID, "live-status").get_attribute("data-block"), "a block")
        )
        phases: list[str] = []
        runner = threading.Thread(target=run, daemon=True)
        runner.start()

        def finished() -> bool:
            phase = _text(browser, "[data-field=phase]")
            if not phases or phases[-1] != phase:
                phases.append(phase)
            pooled = browser.find_elements(By.CSS_SELECTOR, '#metrics-table tr[data-round="1"][data-member="pooled"]')
            return _text(browser, "[data-field=rounds_finalized]") == "1" and bool(pooled)

        _wait(finished, "the finalized round and its metrics on the page", timeout=180)
        runner.join(timeout=60)
        assert not failures, failures
        # The page followed the round through its phases without a reload, block by block.
        assert browser.execute_script("return window.stillTheSamePage") is True
        assert phases[0] == "none" and phases[-1] == "finalized" and len(phases) >= 3, phases
        assert int(browser.find_element(By.ID, "live-status").get_attribute("data-block")) > first_block
        # Every member has posted once the run is over; the page shows the pool of them all by its next poll (the
        # pooled row appeared with the first member's metrics).
        pooled = round_metrics(sim.task, bulletin, sim.store, 1)["pooled"]

        def pooled_on_chart() -> float:
            selector = '#chart-accuracy circle[data-series="pooled"][data-round="1"]'
            return float(browser.find_element(By.CSS_SELECTOR, selector).get_attribute("data-value") or "nan")

        _wait(lambda: pooled_on_chart() == pooled.accuracy, "the pooled accuracy of every member's metrics")
        _wait(lambda: _text(browser, "#audit-status") == "verified", "the audit of the finished task")
