// The fedledger dashboard: reads /api/v1 with the session (or auditor) token kept in this tab's sessionStorage,
// and follows a running task by polling /api/v1/head, reading everything again when a task's round or phase moves.
// Text from the ledger (organization names, reasons) is only ever set as text, never parsed as HTML.
"use strict";
(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "fedledger.token";
  const query = new URLSearchParams(window.location.search);
  const POLL_MS = Math.max(250, Number(query.get("poll")) || 2000);
  // Also read everything now and then: commitments and posted metrics arrive without a phase change.
  const FULL_REFRESH_MS = Math.max(POLL_MS, Number(query.get("refresh")) || 15000);
  const COLORS = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#718096", "#975a16", "#0987a0"];
  const SVG_NS = "http://www.w3.org/2000/svg";
  const state = { task: null, key: null, auditKey: null, refreshedAt: 0, timer: null };

  const $ = (id) => document.getElementById(id);
  const token = () => window.sessionStorage.getItem(TOKEN_KEY);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  const fmt = (x, digits = 4) => (x === null || x === undefined ? "-" : Number(x).toFixed(digits));
  const units = (wei) => (wei === null || wei === undefined ? "-" : (Number(wei) / 1e18).toFixed(4));
  const short = (hash) => (hash ? hash.slice(0, 10) + "…" : "-");
  const label = (org, address) => org || short(address);

  class SignedOut extends Error {}

  async function api(path) {
    const response = await fetch(API + path, { headers: { Authorization: "Bearer " + token() } });
    if (response.status === 401 || response.status === 403) {
      const body = await response.json().catch(() => ({}));
      showSignIn(typeof body.detail === "string" ? body.detail : "signed out");
      throw new SignedOut();
    }
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  // -- sign-in -------------------------------------------------------------------------------------------------

  function showSignIn(message) {
    window.sessionStorage.removeItem(TOKEN_KEY);
    window.clearTimeout(state.timer);
    state.key = null;
    state.auditKey = null;
    $("dashboard").hidden = true;
    $("signout").hidden = true;
    $("who").textContent = "";
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
  }

  async function signIn(candidate) {
    window.sessionStorage.setItem(TOKEN_KEY, candidate);
    let me;
    try {
      me = await api("/auth/whoami");
    } catch (error) {
      if (!(error instanceof SignedOut)) showSignIn(String(error));
      return;
    }
    $("who").textContent = me.kind === "auditor" ? "auditor" : `${me.org || ""} ${me.address}`;
    $("who").dataset.kind = me.kind;
    $("signin").hidden = true;
    $("dashboard").hidden = false;
    $("signout").hidden = false;
    poll();
  }

  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const candidate = $("token").value.trim();
    $("token").value = "";
    if (candidate) signIn(candidate);
  });

  $("signout").addEventListener("click", async () => {
    await fetch(API + "/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + token() } });
    showSignIn("signed out");
  });

  $("task-select").addEventListener("change", () => {
    state.task = $("task-select").value;
    state.key = null;
    state.auditKey = null;
    window.clearTimeout(state.timer);
    poll();
  });

  // -- polling ---------------------------------------------------------------------------------------------------

  async function poll() {
    window.clearTimeout(state.timer);
    try {
      const head = await api("/head");
      renderHead(head);
      const task = head.tasks.find((t) => t.name === state.task) || head.tasks[0];
      if (task) {
        state.task = task.name;
        const key = JSON.stringify([task.name, task.current_round, task.phase, task.rounds_finalized]);
        // The audit re-derives every finalized round: read it again only when one more round finalized.
        const auditKey = JSON.stringify([task.name, task.rounds_finalized]);
        if (key !== state.key || Date.now() - state.refreshedAt > FULL_REFRESH_MS) {
          await refresh(task.name, auditKey !== state.auditKey);
          state.key = key;
          state.auditKey = auditKey;
          state.refreshedAt = Date.now();
        }
      }
      $("live-status").textContent = `live · block ${head.block} · read ${new Date().toLocaleTimeString()}`;
      $("live-status").dataset.block = head.block;
    } catch (error) {
      if (error instanceof SignedOut) return;
      $("live-status").textContent = "connection lost: " + error.message;
    }
    state.timer = window.setTimeout(poll, POLL_MS);
  }

  function renderHead(head) {
    $("chain-state").textContent = `chain ${head.chain_id}`;
    const select = $("task-select");
    const names = head.tasks.map((t) => t.name);
    if (JSON.stringify(names) !== JSON.stringify([...select.options].map((o) => o.value))) {
      select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    }
    if (state.task) select.value = state.task;
  }

  async function refresh(name, withAudit) {
    const base = "/tasks/" + encodeURIComponent(name);
    const [task, rounds, metrics, privacy, rewards, lineage, datasets, consortium] = await Promise.all([
      api(base), api(base + "/rounds"), api(base + "/metrics"), api(base + "/privacy"), api(base + "/rewards"),
      api(base + "/lineage"), api("/datasets"), api("/consortium"),
    ]);
    renderOverview(task);
    renderMetrics(metrics);
    renderUpdates(rounds);
    renderPrivacy(privacy);
    renderRewards(rewards);
    renderLineage(lineage);
    renderDatasets(datasets);
    renderMembers(consortium);
    if (withAudit) {
      $("audit-status").textContent = "checking…";
      renderAudit(await api(base + "/audit"));
    }
  }

  // -- sections --------------------------------------------------------------------------------------------------

  function renderOverview(task) {
    const fields = [
      ["address", task.address], ["kind", task.kind], ["rounds", task.rounds],
      ["current_round", task.current_round], ["phase", task.phase], ["rounds_finalized", task.rounds_finalized],
      ["rounds_aborted", task.rounds_aborted], ["latest_model", task.latest_model], ["done", task.done ? "yes" : "no"],
      ["purpose", task.purpose || "none"], ["aggregation", task.aggregation], ["scoring", task.scoring],
      ["dp", task.dp ? `epsilon budget ${task.privacy_budget_epsilon}` : "off"],
      ["incentives", task.incentives ? "on" : "off"], ["missing", task.missing.join(", ") || "-"],
    ];
    $("overview-fields").replaceChildren(
      ...fields.flatMap(([name, value]) => [el("dt", {}, name.replaceAll("_", " ")), el("dd", { "data-field": name }, value)])
    );
  }

  function renderAudit(audit) {
    const badge = $("audit-status");
    badge.textContent = audit.ok ? "verified" : "FAILED";
    badge.className = "badge " + (audit.ok ? "ok" : "failed");
    badge.dataset.ok = String(audit.ok);
    badge.dataset.block = audit.block;
    const payouts = audit.payouts ? `; payouts ${audit.payouts.ok ? "verified" : "disputed"}` : "";
    const first = audit.first_discrepancy ? ` — ${audit.first_discrepancy}` : "";
    $("audit-detail").textContent =
      `${audit.rounds_checked} rounds, ${audit.updates_checked} updates, ${audit.models_checked} models ` +
      `re-derived at block ${audit.block}${payouts}${first}`;
  }

  function metricSeries(metrics, field) {
    const series = new Map([["pooled", { name: "pooled", points: [] }]]);
    for (const round of metrics.rounds) {
      if (round.pooled) series.get("pooled").points.push([round.round, round.pooled[field]]);
      for (const m of round.members) {
        if (!series.has(m.member)) series.set(m.member, { name: label(m.org, m.member), points: [] });
        series.get(m.member).points.push([round.round, m[field]]);
      }
    }
    return [...series.entries()].map(([id, s]) => ({ id, ...s }));
  }

  function renderChart(target, series) {
    const node = $(target);
    node.replaceChildren();
    const points = series.flatMap((s) => s.points).filter(([, y]) => y !== null && Number.isFinite(y));
    if (!points.length) {
      node.append(Object.assign(svg("text", { x: 20, y: 120 }), { textContent: "no metrics posted yet" }));
      return;
    }
    const [left, right, top, bottom] = [40, 410, 10, 210];
    const xs = points.map(([x]) => x);
    const ys = points.map(([, y]) => y);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 0.5, y1 + 0.5];
    const sx = (x) => left + ((x - x0) / (x1 - x0)) * (right - left);
    const sy = (y) => bottom - ((y - y0) / (y1 - y0)) * (bottom - top);
    node.append(svg("line", { class: "axis", x1: left, y1: bottom, x2: right, y2: bottom }));
    node.append(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: bottom }));
    for (const [value, y] of [[y0, bottom], [y1, top + 8]]) {
      node.append(Object.assign(svg("text", { x: 2, y }), { textContent: fmt(value, 3) }));
    }
    for (let r = x0; r <= x1; r += 1) {
      node.append(Object.assign(svg("text", { x: sx(r) - 3, y: bottom + 14 }), { textContent: String(r) }));
    }
    series.forEach((s, k) => {
      const color = s.id === "pooled" ? "#1d2330" : COLORS[k % COLORS.length];
      const shown = s.points.filter(([, y]) => y !== null && Number.isFinite(y));
      const line = svg("polyline", {
        class: s.id === "pooled" ? "pooled" : "member", stroke: color, "data-series": s.id,
        points: shown.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "),
      });
      line.append(Object.assign(svg("title"), { textContent: s.name }));
      node.append(line);
      for (const [x, y] of shown) {
        node.append(svg("circle", { cx: sx(x), cy: sy(y), r: 2.5, fill: color, "data-series": s.id,
          "data-round": x, "data-value": y }));
      }
      node.append(Object.assign(svg("text", { x: right - 90, y: top + 12 * (k + 1), fill: color }),
        { textContent: s.name }));
    });
  }

  function renderMetrics(metrics) {
    renderChart("chart-accuracy", metricSeries(metrics, "accuracy"));
    renderChart("chart-loss", metricSeries(metrics, "log_loss"));
    const rows = [];
    for (const round of metrics.rounds) {
      const entries = [...(round.pooled ? [["pooled", `pooled (${round.pooled.members} members)`, round.pooled]] : []),
        ...round.members.map((m) => [m.member, label(m.org, m.member), m])];
      for (const [id, who, m] of entries) {
        rows.push(el("tr", { "data-round": round.round, "data-member": id },
          el("td", {}, round.round), el("td", {}, who), el("td", { class: "num" }, m.n),
          el("td", { class: "num", "data-field": "accuracy" }, fmt(m.accuracy)),
          el("td", { class: "num", "data-field": "log_loss" }, fmt(m.log_loss)),
          el("td", { class: "num" }, fmt(m.f1))));
      }
    }
    $("metrics-table").tBodies[0].replaceChildren(...rows);
  }

  function renderUpdates(rounds) {
    const rows = [];
    const aborts = [];
    for (const round of rounds) {
      const verdicts = new Map(round.verdicts.map((v) => [v.index, v]));
      for (const c of round.commitments) {
        const v = verdicts.get(c.index);
        const outcome = !v ? "pending" : v.accepted ? "accepted" : "rejected";
        rows.push(el("tr", { "data-round": round.round, "data-member": c.member, "data-status": outcome },
          el("td", {}, round.round), el("td", {}, label(c.org, c.member)), el("td", { class: "num" }, c.num_examples),
          el("td", { class: outcome }, outcome), el("td", { "data-field": "reason" }, (v && v.reason) || "")));
      }
      if (round.abort_reason) aborts.push(`round ${round.round} aborted: ${round.abort_reason}`);
    }
    $("updates-table").tBodies[0].replaceChildren(...rows);
    $("aborts").textContent = aborts.join("; ");
  }

  function renderPrivacy(privacy) {
    $("privacy-summary").textContent = privacy.dp
      ? `budget epsilon ${privacy.budget_epsilon} at delta ${privacy.delta}; largest spend ${fmt(privacy.task_epsilon)}`
      : "this task runs without differential privacy";
    $("privacy-table").tBodies[0].replaceChildren(...privacy.members.map((m) =>
      el("tr", { "data-member": m.member, "data-over-budget": String(m.over_budget) },
        el("td", {}, label(m.org, m.member)), el("td", { class: "num" }, m.rounds.length),
        el("td", { class: "num", "data-field": "epsilon" }, fmt(m.epsilon)),
        el("td", { class: "num" }, fmt(m.remaining)))));
  }

  function renderRewards(rewards) {
    if (!rewards.incentives) {
      $("rewards-summary").textContent = rewards.reason || "no incentives";
      $("rewards-table").tBodies[0].replaceChildren();
      return;
    }
    const pool = rewards.pool;
    $("rewards-summary").textContent =
      `amounts in 10^18 base units (${rewards.currency}); pool funded ${units(pool.funded)}, allocated ` +
      `${units(pool.allocated)}, paid ${units(pool.paid)}, available ${units(pool.available)}; rounds settled ` +
      `${rewards.rounds.settled.join(", ") || "none"}`;
    $("rewards-table").tBodies[0].replaceChildren(...rewards.members.map((m) =>
      el("tr", { "data-member": m.address },
        el("td", {}, label(m.org, m.address)),
        el("td", {}, m.contributions.map((c) => `${c.round}: ${c.contribution}`).join(", ") || "-"),
        el("td", { class: "num", "data-field": "earned" }, units(m.earned)),
        el("td", { class: "num" }, units(m.stake)), el("td", { class: "num" }, units(m.slashed)))));
  }

  function renderLineage(lineage) {
    $("lineage-tree").replaceChildren(...lineage.map((model) => {
      const verdict = model.compliant === null ? "" : model.compliant ? " · every dataset allowed the purpose"
        : " · a dataset did NOT allow the purpose";
      return el("details", { open: "", "data-round": model.round },
        el("summary", {}, `round ${model.round}: model `, el("span", { class: "hash" }, model.model_hash), verdict),
        el("ul", { class: "lineage" }, ...model.updates.map((u) =>
          el("li", { "data-update": u.update_hash, "data-member": u.member },
            `${label(u.org, u.member)}: update `, el("span", { class: "hash" }, short(u.update_hash)),
            ` (${u.num_examples} examples)`,
            el("ul", {}, ...u.datasets.map((d) => el("li", { "data-dataset": d.dataset_id },
              `dataset ${d.dataset_id}: ${d.rows} rows, commitment `, el("span", { class: "hash" }, short(d.commitment)),
              d.allowed ? " (purpose allowed)" : " (purpose NOT allowed)")))))));
    }));
  }

  function renderDatasets(data) {
    $("datasets-table").tBodies[0].replaceChildren(...data.datasets.map((d) =>
      el("tr", { "data-dataset": d.dataset_id, "data-registry": d.registry },
        el("td", {}, d.dataset_id), el("td", {}, label(d.org, d.owner)), el("td", {}, d.status),
        el("td", { class: "num" }, d.rows), el("td", {}, d.purposes.map((p) => (p.startsWith("0x") ? short(p) : p)).join(", ")),
        el("td", { class: "num", "data-field": "erasures" }, d.erasures))));
  }

  function renderMembers(consortium) {
    $("members-table").tBodies[0].replaceChildren(...consortium.members.map((m) =>
      el("tr", { "data-member": m.address },
        el("td", {}, m.org), el("td", { class: "hash" }, m.address), el("td", {}, m.roles.join(", ")),
        el("td", {}, m.status))));
  }

  // -- start -----------------------------------------------------------------------------------------------------

  $("login-command").textContent = `fedledger serve login --url ${window.location.origin}`;
  if (token()) signIn(token());
  else showSignIn("");
})();
