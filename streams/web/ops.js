// recstream ops page: polls this worker's JSON endpoints and renders them.
// No external fetches, no HTML built from data (textContent only).
"use strict";

const POLL_MS = 1000;
let currentUser = "";
let polls = 0;

function $(id) {
  return document.getElementById(id);
}

function setText(id, value) {
  $(id).textContent = value;
}

function fmtNumber(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return Number(x).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return fmtNumber(s * 1000, 1) + " ms";
  return fmtNumber(s, 2) + " s";
}

function fmtDuration(s) {
  const total = Math.floor(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
}

function fillRows(tableId, rows) {
  const body = $(tableId).querySelector("tbody");
  const fresh = document.createElement("tbody");
  for (const cells of rows) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      td.textContent = cell;
      tr.appendChild(td);
    }
    fresh.appendChild(tr);
  }
  body.replaceWith(fresh);
}

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", Boolean(isError));
}

async function getJson(url) {
  const resp = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
  const body = await resp.json();
  return { status: resp.status, body: body };
}

function renderSummary(s) {
  setText("throughput", fmtNumber(s.throughput.events_per_s, 2));
  setText("events-window", fmtNumber(s.throughput.events_in_window, 0));
  setText("events-total", fmtNumber(s.throughput.events_total, 0));
  setText("window-s", fmtNumber(s.window_s, 0));
  setText("fresh-p50", fmtSeconds(s.freshness.p50));
  setText("fresh-p95", fmtSeconds(s.freshness.p95));
  setText("fresh-p99", fmtSeconds(s.freshness.p99));
  setText("fresh-count", fmtNumber(s.freshness.count, 0));
  setText("worker-group", s.worker.consumer_group);
  setText("worker-model", s.model_version || "–");
  setText("worker-catalog", fmtNumber(s.catalog_items, 0) + " items");
  setText("worker-uptime", fmtDuration(s.worker.uptime_s));
  setText("lag-total", fmtNumber(s.lag_total, 0));
  fillRows(
    "lag-table",
    s.lag.map((r) => [r.topic, String(r.partition), fmtNumber(r.lag, 0)]),
  );
  setText("dlq-total", fmtNumber(s.dead_letters_total, 0));
  fillRows(
    "dlq-table",
    s.dead_letters.map((r) => [r.reason, fmtNumber(r.total, 0)]),
  );
}

function renderList(status, doc) {
  if (status === 404) {
    setText("list-meta", doc.error + ": " + doc.user_id);
    fillRows("list-table", []);
    return;
  }
  if (status !== 200) {
    setText("list-meta", "error " + status);
    return;
  }
  const when = new Date(doc.published_at_ms).toLocaleTimeString("en-GB");
  setText(
    "list-meta",
    doc.user_id + " · after " + doc.event_type + " " + doc.trigger_event_id + " · model " +
      doc.model_version + " · published " + when,
  );
  fillRows(
    "list-table",
    doc.items.map((it) => [String(it.rank), it.item_id, it.title || "(untitled)", fmtNumber(it.score, 3)]),
  );
}

async function refreshList() {
  if (!currentUser) return;
  const res = await getJson("/api/users/" + encodeURIComponent(currentUser) + "/list");
  renderList(res.status, res.body);
}

async function poll() {
  try {
    const res = await getJson("/api/ops/summary");
    if (res.status !== 200) throw new Error("summary answered " + res.status);
    renderSummary(res.body);
    await refreshList();
    polls += 1;
    document.body.dataset.polls = String(polls);
    setStatus("live · updated " + new Date().toLocaleTimeString("en-GB"), false);
  } catch (err) {
    setStatus("cannot reach the worker: " + err.message, true);
  } finally {
    window.setTimeout(poll, POLL_MS);
  }
}

function onSubmit(ev) {
  ev.preventDefault();
  currentUser = $("user-input").value.trim();
  refreshList().catch((err) => setText("list-meta", "error: " + err.message));
}

document.addEventListener("DOMContentLoaded", () => {
  $("user-form").addEventListener("submit", onSubmit);
  poll();
});
