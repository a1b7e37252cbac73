// disruptor dashboard: renders the peer's snapshots, live from /events (server-sent events).
// No libraries: rows are updated in place (so keyboard focus survives updates) and the chart is
// plain SVG.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const WINDOW_S = 300;
const STATE_ORDER = ["alive", "suspect", "dead", "left"];
let latest = null;

const $ = (id) => document.getElementById(id);

function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
function first(obj, ...keys) {
  if (!obj) return null;
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null) return obj[k];
  return null;
}
function fmtInt(v) { return num(v) === null ? "–" : Math.round(v).toLocaleString("en"); }
function fmtBytes(v) {
  if (num(v) === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : v) + " " + units[i];
}
function fmtDuration(s) {
  if (num(s) === null) return "–";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.floor(s / 60) + "m " + Math.floor(s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}
function fmtAgo(t, now) {
  if (num(t) === null) return "–";
  const d = Math.max(0, now - t);
  return d < 1.5 ? "just now" : fmtDuration(d) + " ago";
}
function fmtClock(t) {
  if (num(t) === null) return "–";
  return new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false });
}
function short(sha) { return typeof sha === "string" ? sha.slice(0, 12) : "–"; }

// --- tables: keyed rows, each cell rebuilt only when its content changed --------------------

function cellSig(c) { return JSON.stringify(c); }

function fillCell(td, c) {
  td.textContent = "";
  td.className = c.cls || "";
  if (c.href) {
    const a = document.createElement("a");
    a.href = c.href;
    a.textContent = c.text;
    if (c.title) a.title = c.title;
    td.appendChild(a);
  } else if (c.badge) {
    const span = document.createElement("span");
    span.className = "badge state-" + c.badge;
    span.textContent = c.text;
    td.appendChild(span);
  } else if (c.bar !== undefined) {
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-valuenow", String(Math.round(c.bar)));
    const fill = document.createElement("span");
    fill.style.width = Math.max(0, Math.min(100, c.bar)) + "%";
    bar.appendChild(fill);
    const text = document.createElement("span");
    text.className = "bar-text";
    text.textContent = c.text;
    td.append(bar, text);
  } else {
    td.textContent = c.text;
    if (c.title) td.title = c.title;
  }
}

function syncRows(tbody, items, keyOf, cellsOf, emptyText, decorate) {
  const headers = Array.from(tbody.closest("table").querySelectorAll("thead th"));
  const columns = headers.length;
  const existing = new Map();
  for (const tr of Array.from(tbody.children)) existing.set(tr.dataset.key, tr);
  if (!items.length) {
    tbody.textContent = "";
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = columns;
    td.className = "empty";
    td.textContent = emptyText;
    tr.appendChild(td);
    tbody.appendChild(tr);
    return;
  }
  const seen = new Set();
  let previous = null;
  for (const item of items) {
    const key = String(keyOf(item));
    seen.add(key);
    let tr = existing.get(key);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.key = key;
      tr.tabIndex = 0;
    }
    const cells = cellsOf(item);
    while (tr.children.length < cells.length) tr.appendChild(document.createElement("td"));
    while (tr.children.length > cells.length) tr.lastChild.remove();
    cells.forEach((c, i) => {
      const td = tr.children[i];
      const sig = cellSig(c);
      if (td.dataset.sig !== sig) { fillCell(td, c); td.dataset.sig = sig; }
      // On a narrow screen a row is stacked into a block, each cell under its column's name.
      if (headers[i] && td.dataset.label !== headers[i].textContent) td.dataset.label = headers[i].textContent;
    });
    if (decorate) decorate(tr, item);
    const wanted = previous ? previous.nextSibling : tbody.firstChild;
    if (wanted !== tr) tbody.insertBefore(tr, wanted);
    previous = tr;
  }
  for (const [key, tr] of existing) if (!seen.has(key)) tr.remove();
}

// --- sections --------------------------------------------------------------------------------

function renderHeader(s) {
  $("cluster").textContent = s.self.cluster;
  $("self-address").textContent = s.self.address;
  $("version").textContent = s.self.version;
  $("uptime").textContent = fmtDuration(s.self.uptime_s);
  document.title = "disruptor · " + s.self.address;
}

function renderPeers(s) {
  const counts = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const p of s.peers) if (p.state in counts) counts[p.state]++;
  $("n-alive").textContent = counts.alive;
  $("n-other").textContent = STATE_ORDER.slice(1).map((k) => counts[k] + " " + k).join(" · ");
  $("peers-note").textContent = s.peers.length + " known";
  syncRows($("peers-body"), s.peers, (p) => p.address, (p) => {
    const load = p.load || {};
    return [
      { href: p.url, text: p.address, title: "open this peer's dashboard", cls: "mono" },
      { badge: p.state, text: p.state },
      { text: fmtClock(p.since), title: fmtAgo(p.since, s.now) },
      { text: p.self ? "this peer" : fmtAgo(p.last_seen, s.now) },
      loadCell(p, first(load, "tasks_running")),
      loadCell(p, first(load, "queue_length")),
      loadCell(p, first(load, "worker_slots_free")),
      { text: fmtInt(p.bundles), cls: "num" },
      { text: p.version || "–" },
    ];
  }, "no peers known", (tr, p) => {
    tr.dataset.address = p.address;
    tr.dataset.state = p.state;
    tr.classList.toggle("me", !!p.self);
  });
}

// A peer's load is what it last gossiped: current while it is alive, perhaps out of date while
// it is suspected (greyed), and meaningless once it is dead or has left (blank, the last figure
// kept in the tooltip).
function loadCell(p, value) {
  if (p.state === "dead" || p.state === "left") {
    const last = value === null ? "nothing" : fmtInt(value);
    return { text: "–", cls: "num load stale", title: `last reported ${last} before the peer ${p.state === "dead" ? "died" : "left"}` };
  }
  if (p.state === "suspect") {
    return { text: fmtInt(value), cls: "num load stale", title: "may be out of date: the peer is not answering" };
  }
  return { text: fmtInt(value), cls: "num load" };
}

function workerName(w) {
  const name = first(w, "name", "bundle_name");
  const sha = first(w, "bundle", "sha1", "bundle_sha1");
  if (name && first(w, "version")) return name + " " + w.version;
  return name || short(sha);
}

function renderWorkers(s) {
  let running = 0, restarts = 0;
  for (const w of s.workers) {
    running += num(w.running) || 0;
    restarts += num(w.restarts) || 0;
  }
  $("n-workers").textContent = fmtInt(running);
  $("n-restarts").textContent = restarts + (restarts === 1 ? " restart" : " restarts");
  syncRows($("workers-body"), s.workers, (w) => w.bundle, (w) => [
    { text: workerName(w), title: w.bundle || "" },
    w.failed
      ? { badge: "dead", text: "failed", title: w.failed }
      : { text: fmtInt(w.running) + " / " + fmtInt(w.workers), cls: "num" },
    { text: fmtInt(w.busy), cls: "num" },
    { text: fmtInt(w.tasks_done), cls: "num" },
    { text: fmtInt(w.restarts), cls: "num" },
  ], "no workers running on this peer");
}

function renderBundles(s) {
  let bytes = 0;
  for (const b of s.bundles) bytes += num(first(b, "size", "size_bytes")) || 0;
  $("n-bundles").textContent = s.bundles.length;
  $("n-bundle-bytes").textContent = fmtBytes(bytes);
  syncRows($("bundles-body"), s.bundles, (b) => b.sha1, (b) => [
    { text: [first(b, "name"), first(b, "version")].filter(Boolean).join(" ") || "–" },
    { text: short(b.sha1), title: b.sha1, cls: "mono" },
    { text: fmtBytes(first(b, "size", "size_bytes")), cls: "num" },
    { text: short(first(b, "signer", "key_id")), title: first(b, "signer", "key_id") || "", cls: "mono" },
  ], "no bundles held");
}

function jobKind(j) {
  const bundle = first(j, "bundle");
  const kind = first(j, "kind") || (bundle ? "bundle" : "–");
  const policy = first(j, "policy");
  const title = [bundle, policy && "placed by " + policy].filter(Boolean).join(", ");
  return { text: bundle ? kind + " " + bundle.slice(0, 8) : kind, title };
}
function jobProgress(j) {
  const p = (j.progress && typeof j.progress === "object") ? j.progress : j;
  const total = num(first(p, "total", "items_total", "tasks_total"));
  const done = num(first(p, "done", "items_done", "tasks_done")) || 0;
  const failed = num(first(p, "failed")) || 0;
  return { total, done, failed };
}
function jobStart(j) { return first(j, "started", "started_at", "submitted_at", "created"); }

function renderJobs(s) {
  const inFlight = s.jobs.in_flight || [];
  const recent = s.jobs.recent || [];
  $("n-jobs").textContent = inFlight.length;
  const jobsStats = (s.stats && s.stats.jobs) || {};
  const done = first(jobsStats, "completed");
  $("n-jobs-done").textContent = done === null ? "" : fmtInt(done) + " completed";
  syncRows($("jobs-body"), inFlight, (j) => first(j, "id", "job_id"), (j) => {
    const { total, done } = jobProgress(j);
    const pct = total ? (100 * done) / total : 0;
    return [
      { text: short(String(first(j, "id", "job_id"))), title: String(first(j, "id", "job_id")), cls: "mono" },
      jobKind(j),
      { bar: pct, text: total ? Math.floor(pct) + "%" : "–" },
      { text: total === null ? fmtInt(done) : fmtInt(done) + " / " + fmtInt(total), cls: "num" },
      { text: fmtAgo(jobStart(j), s.now) },
    ];
  }, "no jobs running", (tr, j) => {
    const { total, done } = jobProgress(j);
    tr.dataset.done = String(done);
    tr.dataset.total = String(total === null ? "" : total);
  });
  syncRows($("recent-body"), recent, (j) => first(j, "id", "job_id"), (j) => {
    const outcome = String(first(j, "outcome", "state", "status") || "–");
    const { total, done } = jobProgress(j);
    const started = jobStart(j);
    const finished = first(j, "finished", "finished_at");
    const took = first(j, "duration_s") ?? (num(started) !== null && num(finished) !== null ? finished - started : null);
    return [
      { text: short(String(first(j, "id", "job_id"))), title: String(first(j, "id", "job_id")), cls: "mono" },
      jobKind(j),
      { text: outcome, cls: "outcome-" + outcome.toLowerCase() },
      { text: fmtInt(total === null ? done : total), cls: "num" },
      { text: fmtDuration(took), cls: "num" },
      { text: fmtAgo(finished, s.now) },
    ];
  }, "no finished jobs yet");
}

// --- chart -----------------------------------------------------------------------------------

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  // Quarters of these are round numbers too (the chart draws four grid lines).
  for (const m of [1, 2, 4, 6, 8, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// History points arrive as [t, jobs_per_s, items_per_s, latency_ms, local_items_per_s]
// (compact: sent every second).
function point(raw) {
  return { t: raw[0], jobs_per_s: raw[1], items_per_s: raw[2], latency_ms: raw[3], local: raw[4] || 0 };
}
function rateOf(p) { return p.items_per_s || 0; }

function renderChart(s) {
  const box = $("chart");
  const w = Math.max(300, box.clientWidth || 600), h = Math.max(120, box.clientHeight || 180);
  const pad = { l: 44, r: 52, t: 10, b: 22 };
  const pts = (s.series || []).map(point);
  const now = s.now;
  // The last five minutes, or less while the peer is young (at least one minute), so a new
  // peer's first points are not squeezed against the right edge.
  const span = pts.length ? now - pts[0].t : 0;
  const win = Math.min(WINDOW_S, Math.max(60, Math.ceil(span / 60) * 60));
  const x = (t) => pad.l + ((t - (now - win)) / win) * (w - pad.l - pad.r);
  const rateMax = niceMax(Math.max(0, ...pts.map(rateOf), ...pts.map((p) => p.local)));
  const latMax = niceMax(Math.max(0, ...pts.map((p) => p.latency_ms || 0)));
  const yRate = (v) => h - pad.b - (v / rateMax) * (h - pad.t - pad.b);
  const yLat = (v) => h - pad.b - (v / latMax) * (h - pad.t - pad.b);

  const svg = svgEl("svg", { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", "aria-hidden": "true" });
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + (i * (h - pad.t - pad.b)) / 4;
    svg.appendChild(svgEl("line", { x1: pad.l, x2: w - pad.r, y1: y, y2: y, class: "grid" }));
    const frac = 1 - i / 4;
    svg.appendChild(svgEl("text", { x: pad.l - 6, y: y + 4, "text-anchor": "end", class: "axis" }, +(rateMax * frac).toPrecision(3)));
    svg.appendChild(svgEl("text", { x: w - pad.r + 6, y: y + 4, class: "axis" }, +(latMax * frac).toPrecision(3)));
  }
  const step = win / 5;
  for (let i = 0; i <= 5; i++) {
    const ago = i * step;
    const label = i === 0 ? "now" : ago % 60 === 0 ? `-${ago / 60}m` : `-${ago}s`;
    svg.appendChild(svgEl("text", { x: x(now - ago), y: h - 6, "text-anchor": "middle", class: "axis" }, label));
  }
  const visible = pts.filter((p) => p.t >= now - win);
  if (visible.length > 1) {
    const line = visible.map((p) => `${x(p.t).toFixed(1)},${yRate(rateOf(p)).toFixed(1)}`).join(" ");
    const first = visible[0], last = visible[visible.length - 1];
    svg.appendChild(svgEl("polygon", {
      points: `${x(first.t).toFixed(1)},${h - pad.b} ${line} ${x(last.t).toFixed(1)},${h - pad.b}`,
      class: "rate-area",
    }));
    svg.appendChild(svgEl("polyline", { points: line, class: "rate" }));
    const local = visible.map((p) => `${x(p.t).toFixed(1)},${yRate(p.local).toFixed(1)}`).join(" ");
    svg.appendChild(svgEl("polyline", { points: local, class: "local" }));
  }
  // Latency exists only for steps in which a job finished: a dot each, joined when consecutive,
  // so quiet steps leave a gap rather than a false zero.
  let seg = [];
  const flush = () => {
    if (seg.length > 1) svg.appendChild(svgEl("polyline", { points: seg.join(" "), class: "lat" }));
    seg = [];
  };
  for (const p of visible) {
    if (num(p.latency_ms) === null) { flush(); continue; }
    const px = x(p.t).toFixed(1), py = yLat(p.latency_ms).toFixed(1);
    seg.push(`${px},${py}`);
    svg.appendChild(svgEl("circle", { cx: px, cy: py, r: 3, class: "lat-dot" }));
  }
  flush();
  box.replaceChildren(svg);

  // The peer's rates are over a sliding window of what was delivered already (timeseries.py):
  // the card shows the latest, not an average of averages.
  const last = pts.length ? pts[pts.length - 1] : null;
  const running = (s.jobs && s.jobs.in_flight || []).length;
  setFigure($("n-rate"), last === null ? "–" : String(+rateOf(last).toFixed(1)), "items/s");
  $("n-local").textContent = last === null ? "" : (+last.local.toFixed(1)) + " items/s run here";
  const lats = pts.slice(-30).filter((p) => num(p.latency_ms) !== null);
  const latText = lats.length
    ? "job latency " + fmtDuration(lats.reduce((a, p) => a + p.latency_ms, 0) / lats.length / 1000)
    : running ? "no job finished in 30 s" : "idle for 30 s";
  const busyText = running ? running + (running === 1 ? " job running · " : " jobs running · ") : "";
  $("n-latency").textContent = busyText
    + (last === null ? "" : (+last.jobs_per_s.toFixed(2)) + " jobs/s · ") + latText;
}

function setFigure(el, value, unit) {
  if (el.dataset.sig === value + unit) return;
  el.dataset.sig = value + unit;
  const small = document.createElement("small");
  small.textContent = " " + unit;
  el.replaceChildren(value, small);
}

function render(s) {
  latest = s;
  renderHeader(s);
  renderPeers(s);
  renderWorkers(s);
  renderBundles(s);
  renderJobs(s);
  renderChart(s);
  const missing = s.unavailable || [];
  const parts = { peers: "membership", workers: "worker pool", bundles: "bundle store", jobs: "job runner", series: "metrics" };
  $("unavailable").textContent = missing.length
    ? "not running on this peer: " + missing.map((m) => parts[m] || m).join(", ")
    : "";
}

// --- live updates ----------------------------------------------------------------------------

function setLive(on, text) {
  const live = $("live");
  live.classList.toggle("on", on);
  live.classList.toggle("off", !on);
  $("live-text").textContent = text;
}

async function checkSignedIn() {
  try {
    const r = await fetch("/dashboard/snapshot", { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) { window.location.assign("/login"); return; }
    if (r.ok) render(await r.json());
  } catch (e) {
    setLive(false, "peer unreachable; retrying");
  }
}

function connect() {
  const events = new EventSource("/events");
  events.addEventListener("snapshot", (e) => {
    setLive(true, "live");
    const s = JSON.parse(e.data);
    // A tab nobody looks at keeps the latest snapshot and draws it when shown again.
    if (document.hidden) latest = s;
    else render(s);
  });
  events.onerror = () => {
    setLive(false, "reconnecting");
    checkSignedIn();
  };
}

window.addEventListener("resize", () => { if (latest) renderChart(latest); });
document.addEventListener("visibilitychange", () => { if (!document.hidden && latest) render(latest); });
document.addEventListener("DOMContentLoaded", () => {
  checkSignedIn();
  connect();
});
