// The wallboard: GET /v1/live/stream (Server-Sent Events) kept as one view,
// drawn with the DOM. `snapshot` events replace the view, `change` events are
// JSON Merge Patches (RFC 7396) of it. Ages tick locally between events from the
// snapshot's `as_of`, so a wait grows on screen without any new event.
// Actions are plain API calls with the session cookie and the CSRF header; the
// API decides whether the role may (403 is shown as it comes).
"use strict";

let view = null;           // the live snapshot as last patched
let receivedAt = 0;        // Date.now() when `view` arrived: ages tick from there
let source = null;
const RETRY_FIRST_MS = 1000, RETRY_MAX_MS = 30000;
let retryMs = RETRY_FIRST_MS; // the wait before connecting again after a refused stream
let slDay = null;           // GET /v1/live/service-level: each queue's 15-minute buckets today

const $ = (id) => document.getElementById(id);

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

function mergePatch(target, patch) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const result = (target && typeof target === "object" && !Array.isArray(target)) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

// --- session ---------------------------------------------------------------

// The refresh's status; 0 when nothing answered (the network, the server away).
async function refreshSession() {
  try {
    const response = await fetch("/v1/auth/session/refresh", {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": cookie("dialtone_csrf") },
    });
    return response.status;
  } catch {
    return 0;
  }
}

// Only a refused refresh means signing in again: a 5xx (the database away, a proxy
// while the API restarts) or no answer at all says nothing about the session.
const refused = (status) => status === 401 || status === 403;
const renewed = (status) => status >= 200 && status < 300;

async function api(method, path, body) {
  const send = () => fetch(path, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": cookie("dialtone_csrf") },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let response = await send();
  if (response.status !== 401) return response;
  const refresh = await refreshSession();
  if (refused(refresh)) location.assign("/login");
  else if (renewed(refresh)) response = await send();
  return response; // a refresh that failed otherwise (5xx, no answer): the caller sees the 401
}

// --- stream ----------------------------------------------------------------

function connect() {
  source = new EventSource("/v1/live/stream");
  source.addEventListener("snapshot", (e) => accept(JSON.parse(e.data)));
  source.addEventListener("change", (e) => accept(mergePatch(view, JSON.parse(e.data))));
  source.onopen = () => {
    retryMs = RETRY_FIRST_MS;
    $("connection").textContent = "live";
  };
  source.onerror = async () => {
    $("connection").textContent = "reconnecting…";
    if (source.readyState !== EventSource.CLOSED) return; // the browser retries by itself
    // The stream was answered with an error, which EventSource does not tell: the
    // session expired (renew it, or sign in when it is refused), or the API or a
    // proxy before it failed (503, 502, 504): keep the page and try again, each
    // time waiting twice as long, up to RETRY_MAX_MS.
    source.close();
    const refresh = await refreshSession();
    if (refused(refresh)) {
      location.assign("/login");
      return;
    }
    setTimeout(connect, retryMs);
    retryMs = Math.min(2 * retryMs, RETRY_MAX_MS);
  };
}

function accept(next) {
  view = next;
  receivedAt = Date.now();
  render();
}

// --- drawing ---------------------------------------------------------------

const elapsed = () => (Date.now() - receivedAt) / 1000;

function duration(seconds) {
  // null, absent (a merge patch removes a key that became null), or not a number.
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

const percent = (x) => (x == null ? "–" : `${Math.round(x * 100)}%`);

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function age(element, seconds) {
  // A time that grows between events: tick() redraws it from the value at receipt.
  if (seconds != null) element.dataset.age = String(seconds);
  element.textContent = duration(seconds == null ? null : seconds + elapsed());
  return element;
}

function tick() {
  // Every second, only the ages change: the rest (and the keyboard focus) stays put.
  for (const element of document.querySelectorAll("[data-age]")) {
    element.textContent = duration(Number(element.dataset.age) + elapsed());
  }
}

function button(label, action, detail) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.action = action;
  b.addEventListener("click", () => confirmAction(action, detail));
  return b;
}

function render() {
  if (!view) return;
  const focused = focusKey();
  renderSummary(elapsed());
  renderQueues();
  renderAgents();
  renderCalls();
  renderCharts();
  restoreFocus(focused);
}

function focusKey() {
  // Which action button had the focus, by what it acts on, to give it back after a redraw.
  const active = document.activeElement;
  const owner = active && active.closest ? active.closest("[data-call], [data-agent]") : null;
  if (!owner || !active.dataset.action) return null;
  return `[data-${owner.dataset.call ? "call" : "agent"}="${owner.dataset.call || owner.dataset.agent}"] ` +
         `button[data-action="${active.dataset.action}"]`;
}

function restoreFocus(selector) {
  if (!selector || $("confirm").open) return;
  const again = document.querySelector(selector);
  if (again) again.focus();
}

function renderSummary(since) {
  const s = view.summary;
  $("summary").textContent = s
    ? `Waiting ${s.calls_waiting} · oldest ${duration(s.oldest_wait_s == null ? null : s.oldest_wait_s + since)}` +
      ` · SL today ${percent(s.today.service_level)} · agents available ${s.agents_available}/${s.agents_staffed}`
    : "";
}

// The stream keys queues, agents and calls by id (a change carries only the
// entries that changed); the page lists them in a stable order.
const byKey = (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const entries = (collection, order) => Object.values(collection || {}).sort(order);
const queues = () => entries(view.queues, byKey);

// Seconds from an instant to the view's `as_of` (then ticking on): the stream sends
// instants, not ages, so nothing changes with the clock alone.
const ageAt = (instant) => (Date.parse(view.as_of) - Date.parse(instant)) / 1000;

function renderQueues() {
  const body = $("queues").tBodies[0];
  body.replaceChildren(...queues().map((q) => {
    const row = document.createElement("tr");
    row.dataset.queue = q.key;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = q.name || q.key;
    row.appendChild(name);
    cell(row, String(q.now.calls_waiting), "waiting num");
    age(cell(row, "", "num"), q.now.oldest_wait_s);
    cell(row, percent(q.today.service_level), "num");
    cell(row, percent(q.window.service_level), "num");
    cell(row, duration(q.today.asa_s), "num");
    cell(row, String(q.today.abandoned), "num");
    cell(row, `${q.now.agents_available} / ${q.now.agents_on_call} / ${q.now.agents_wrap_up} / ` +
              `${q.now.agents_paused} / ${q.now.agents_staffed}`, "num");
    return row;
  }));
}

function renderAgents() {
  $("agents").replaceChildren(...entries(view.agents, byKey).map((a) => {
    const item = document.createElement("li");
    item.dataset.agent = a.key;
    item.className = `agent state-${a.state}`;
    const name = document.createElement("strong");
    name.textContent = a.name || a.key;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = a.state.replace("_", " ") + (a.pause_reason ? ` (${a.pause_reason})` : "");
    const since = document.createElement("span");
    since.className = "since";
    age(since, ageAt(a.state_since));
    const actions = document.createElement("span");
    actions.className = "actions";
    if (a.state !== "logged_out") {
      actions.append(button("Pause", "pause", a), button("Log out", "logout", a));
    }
    item.append(name, state, since, actions);
    return item;
  }));
}

function renderCalls() {
  const body = $("calls").tBodies[0];
  const byStart = (a, b) => (a.started_at < b.started_at ? -1 : a.started_at > b.started_at ? 1
    : a.call_id < b.call_id ? -1 : 1);
  body.replaceChildren(...entries(view.calls, byStart).map((c) => {
    const row = document.createElement("tr");
    row.dataset.call = c.call_id;
    cell(row, c.caller);
    cell(row, c.callee);
    cell(row, c.queue || "–");
    cell(row, c.status.replace("_", " "), "status");
    age(cell(row, "", "num"), ageAt(c.started_at));
    const actions = cell(row, "");
    actions.append(button("Monitor", "monitor", c), button("Whisper", "whisper", c),
                   button("Barge", "barge", c), button("Transfer", "transfer", c));
    return row;
  }));
}

async function loadServiceLevel() {
  // The line over the day comes from the server (15-minute buckets since the
  // tenant's midnight), read on start and every minute: the last bucket fills up.
  const response = await api("GET", "/v1/live/service-level");
  if (!response.ok) return;
  slDay = await response.json();
  if (view) renderCharts();
}

function slPoints(key) {
  // Each bucket with calls offered, at its middle: [x 0..240, y 1..59].
  const queue = slDay && slDay.queues.find((q) => q.key === key);
  if (!queue) return [];
  const since = Date.parse(slDay.since), span = Date.parse(slDay.day_until) - since;
  return queue.buckets.filter((b) => b.service_level != null).map((b) => {
    const middle = (Date.parse(b.since) + Date.parse(b.until)) / 2;
    return `${(((middle - since) / span) * 240).toFixed(1)},${(60 - b.service_level * 58 - 1).toFixed(1)}`;
  });
}

function renderCharts() {
  // Service level per 15 minutes, one line per queue, over the tenant's day
  // (midnight to midnight), with the 80 % target dashed.
  const charts = $("sl-charts");
  const ns = "http://www.w3.org/2000/svg";
  charts.replaceChildren(...queues().map((q) => {
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = `${q.name || q.key}: service level today ${percent(q.today.service_level)}`;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 240 60");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", caption.textContent);
    const points = slPoints(q.key);
    const target = document.createElementNS(ns, "line");
    Object.entries({ x1: 0, x2: 240, y1: 60 - 0.8 * 58 - 1, y2: 60 - 0.8 * 58 - 1, class: "target" })
      .forEach(([k, v]) => target.setAttribute(k, v));
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.append(target, line);
    figure.append(caption, svg);
    return figure;
  }));
}

// --- actions ---------------------------------------------------------------

const ACTIONS = {
  monitor: { text: (c) => `Monitor the call from ${c.caller}? Your own phone will ring.`,
             run: (c) => api("POST", `/v1/calls/${c.call_id}/supervision`, { mode: "monitor" }) },
  whisper: { text: (c) => `Whisper to the agent on the call from ${c.caller}? Your phone will ring.`,
             run: (c) => api("POST", `/v1/calls/${c.call_id}/supervision`, { mode: "whisper" }) },
  barge: { text: (c) => `Barge into the call from ${c.caller}? Both parties will hear you.`,
           run: (c) => api("POST", `/v1/calls/${c.call_id}/supervision`, { mode: "barge" }) },
  transfer: { text: (c) => `Transfer the call from ${c.caller} (blind) to a queue:`,
              field: "Queue key",
              run: (c, value) => api("POST", `/v1/calls/${c.call_id}/transfer`,
                                     { kind: "blind", target: { kind: "queue", value } }) },
  pause: { text: (a) => `Force ${a.name || a.key} into pause?`, field: "Reason",
           run: (a, value) => api("POST", `/v1/agents/${encodeURIComponent(a.key)}/pause`, { reason: value }) },
  logout: { text: (a) => `Log ${a.name || a.key} out?`,
            run: (a) => api("POST", `/v1/agents/${encodeURIComponent(a.key)}/logout`) },
};

function confirmAction(action, subject) {
  const spec = ACTIONS[action];
  const dialog = $("confirm");
  $("confirm-text").textContent = spec.text(subject);
  $("confirm-field").hidden = !spec.field;
  $("confirm-label").textContent = spec.field || "";
  $("confirm-input").value = "";
  $("confirm-input").required = Boolean(spec.field);
  dialog.returnValue = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok") return;
    const response = await spec.run(subject, $("confirm-input").value.trim());
    const problem = response.ok ? null : await response.json().catch(() => ({}));
    $("notice").textContent = response.ok
      ? `${action}: accepted (${response.status}).`
      : `${action}: refused (${response.status}) ${problem.detail || ""}`;
  };
  dialog.showModal();
  (spec.field ? $("confirm-input") : $("confirm-yes")).focus();
}

// --- start -----------------------------------------------------------------

// Cancel is no submit button, so Enter in the dialog confirms; Escape cancels.
$("confirm-no").addEventListener("click", () => $("confirm").close("cancel"));
$("logout").addEventListener("click", async () => {
  await api("DELETE", "/v1/auth/session");
  location.assign("/login");
});
setInterval(tick, 1000);
setInterval(loadServiceLevel, 60000);
connect();
loadServiceLevel();
