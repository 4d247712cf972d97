// The geoha operator dashboard: reads /api/state and /api/history, draws them.
// No framework and no inline script (the page's Content-Security-Policy forbids it);
// every value reaches the page through textContent, never as markup.
"use strict";

const STATE_EVERY_MS = 2000;
const HISTORY_EVERY_MS = 4000;
const MINUTES = 10;
const COLORS = ["#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"];
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function badge(ok, yes, no, unknown) {
  if (ok === null || ok === undefined) return el("span", { class: "badge" }, unknown || "unknown");
  return el("span", { class: "badge " + (ok ? "ok" : "bad") }, ok ? yes : no);
}

function ms(value) {
  return value === null || value === undefined ? "–" : value.toFixed(1) + " ms";
}

function bytes(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1024) return value + " B";
  if (value < 1048576) return (value / 1024).toFixed(1) + " KiB";
  return (value / 1048576).toFixed(1) + " MiB";
}

function percent(value) {
  return value === null || value === undefined ? "–" : (value * 100).toFixed(0) + " %";
}

function time(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleTimeString() : "–";
}

function check(name, result) {
  return [
    el("dt", {}, name),
    el("dd", {}, badge(result.ok, "pass", "fail", "not yet"), " ", ms(result.latency_ms), " ",
      el("span", { class: "muted" }, result.detail)),
  ];
}

function regionCard(region, primary) {
  const db = region.database;
  const role = db.role || "unreachable";
  const lag = db.node === primary
    ? "takes the writes"
    : `${db.replication_state || "not streaming"}${db.sync_state ? " (" + db.sync_state + ")" : ""}, ` +
      `replay ${ms(db.replay_lag_ms)} / ${bytes(db.replay_lag_bytes)}, write ${ms(db.write_lag_ms)}`;
  const lbs = region.lbs.map((lb) => [
    el("dt", {}, lb.node),
    el("dd", {}, badge(lb.healthy, "up", "down"),
      lb.error ? el("span", { class: "muted" }, " " + lb.error) : null,
      el("ul", { class: "servers" }, ...lb.servers.map((s) =>
        el("li", { class: s.status.split(" ")[0], title: s.backend }, `${s.server} ${s.status}`)))),
  ]).flat();
  return el("article", { class: "region " + (region.up ? "up" : "down"), "data-region": region.region },
    el("h3", {}, region.region, badge(region.up, "in DNS", "out of DNS")),
    el("dl", {},
      ...check("entry", region.entry),
      ...check("api", region.api),
      el("dt", {}, "DNS share"),
      el("dd", {}, `${percent(region.dns.answered_share)} answered, ${percent(region.dns.expected_share)} expected (weight ${region.dns.weight})`),
      el("dt", {}, "database"),
      el("dd", {}, `${db.node}: `, el("span", { class: "badge " + (db.healthy ? "ok" : "bad") }, role), " ", lag),
      ...lbs));
}

function incidentRow(incident) {
  return el("tr", { class: incident.open ? "open" : "" },
    el("td", {}, incident.subject),
    el("td", {}, incident.cause),
    el("td", {}, time(incident.started_at)),
    el("td", {}, incident.open ? "open" : time(incident.ended_at)),
    el("td", {}, incident.duration_s.toFixed(1) + " s"),
    el("td", {}, incident.resolution || ""));
}

function groupRow(group) {
  const last = group.decisions.length ? group.decisions[group.decisions.length - 1] : null;
  const draining = group.draining.length ? ` (draining ${group.draining.join(", ")})` : "";
  return el("tr", { class: group.current < group.min ? "open" : "" },
    el("td", {}, `${group.tier}/${group.region}`),
    el("td", {}, String(group.current)),
    el("td", {}, String(group.desired) + draining),
    el("td", {}, `${group.min}–${group.max}`),
    el("td", {}, group.cpu_percent === null ? "—" : `${group.cpu_percent.toFixed(0)} %`),
    el("td", {}, String(group.in_flight)),
    el("td", {}, last ? `${time(last.t)} ${last.sentence}` : "none yet"));
}

function renderState(state) {
  const open = state.incidents.filter((i) => i.open).length;
  document.getElementById("summary").textContent =
    `${state.name} via DNS ${state.dns_server} · primary ${state.primary || "none"} · ` +
    `${open} open incident${open === 1 ? "" : "s"} · last check ${time(state.at)}` +
    (state.watching ? "" : " · not watching yet (the deployment is not ready)");
  document.getElementById("regions").replaceChildren(
    ...state.regions.map((r) => regionCard(r, state.primary)));
  const rows = state.incidents.map(incidentRow);
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "no incidents")));
  document.getElementById("incidents").replaceChildren(...rows);
  const groups = (state.autoscale || []).map(groupRow);
  if (groups.length === 0) groups.push(el("tr", {}, el("td", { colspan: "7", class: "muted" }, "no autoscaled group")));
  document.getElementById("autoscale").replaceChildren(...groups);
}

function svgNode(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

// One line per region; a null value breaks the line (a failed check, an unknown lag).
function drawChart(svg, series, since, until) {
  const width = 600, height = 160, left = 40, bottom = 20;
  const values = series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v !== null));
  const top = Math.max(1, ...values) * 1.1;
  const x = (t) => left + ((t - since) / Math.max(1, until - since)) * (width - left - 5);
  const y = (v) => height - bottom - (v / top) * (height - bottom - 5);
  const nodes = [
    svgNode("line", { class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom }),
    svgNode("line", { class: "axis", x1: left, y1: 5, x2: left, y2: height - bottom }),
  ];
  const label = svgNode("text", { x: 2, y: 12 });
  label.textContent = top.toFixed(top < 10 ? 1 : 0);
  const zero = svgNode("text", { x: 2, y: height - bottom });
  zero.textContent = "0";
  const ago = svgNode("text", { x: left, y: height - 4 });
  ago.textContent = `-${MINUTES} min`;
  nodes.push(label, zero, ago);
  series.forEach((s, i) => {
    let run = [];
    const flush = () => {
      if (run.length > 0) {
        nodes.push(svgNode("polyline", { points: run.join(" "), stroke: COLORS[i % COLORS.length] }));
      }
      run = [];
    };
    for (const [t, v] of s.points) {
      if (v === null) flush();
      else run.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    }
    flush();
  });
  svg.replaceChildren(...nodes);
}

function renderHistory(history) {
  const until = Date.now() / 1000;
  const since = until - MINUTES * 60;
  const regions = [...new Set(history.samples.map((s) => s.region))];
  const pick = (field, keep) => regions.map((region) => ({
    region,
    points: history.samples.filter((s) => s.region === region)
      .map((s) => [s.at, keep(s) ? s[field] : null]),
  }));
  drawChart(document.getElementById("chart-checks"), pick("entry_ms", (s) => s.entry_ok), since, until);
  drawChart(document.getElementById("chart-lag"),
    pick("replay_lag_ms", (s) => s.db_role === "replica"), since, until);
  document.getElementById("legend").replaceChildren(...regions.map((region) =>
    el("span", {}, el("span", { class: "swatch" }), region)));
  document.querySelectorAll("#legend .swatch").forEach((swatch, i) => {
    swatch.style.background = COLORS[i % COLORS.length];
  });
}

async function fetchJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function every(ms, work) {
  const run = async () => {
    try {
      await work();
    } catch (error) {
      document.getElementById("summary").textContent = `monitor unreachable: ${error.message}`;
    }
    setTimeout(run, ms);
  };
  run();
}

document.getElementById("chart-minutes").textContent = String(MINUTES);
every(STATE_EVERY_MS, async () => renderState(await fetchJson("/api/state")));
every(HISTORY_EVERY_MS, async () => renderHistory(await fetchJson(`/api/history?minutes=${MINUTES}`)));
