// The iotmon operator console: plain browser JavaScript, no build step. It holds no
// data of its own: every call carries the token and the API decides what it may see.
"use strict";

const POLL_MS = 3000;
const RETRY_MS = 2000;
const CLEARED_SHOWN = 20;

const state = {
  token: null,
  me: null,
  tenant: null,
  alerts: new Map(), // id -> alert, as the stream last sent it
  cursor: null,
  stream: null, // AbortController of the live stream
  timers: [],
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  const clock = date.toLocaleTimeString([], { hour12: false });
  if (seconds < 60) return `${clock} (${Math.max(seconds, 0)} s ago)`;
  if (seconds < 3600) return `${clock} (${Math.round(seconds / 60)} min ago)`;
  return date.toLocaleString([], { hour12: false });
}

class ProblemError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? `${problem.title}: ${problem.detail}` : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (!response.ok) {
    let problem = null;
    try { problem = await response.json(); } catch (_) { /* not a problem document */ }
    if (response.status === 401) logout(problem && problem.detail);
    throw new ProblemError(response.status, problem);
  }
  return response.status === 204 ? null : response.json();
}

function withTenant(path) {
  if (!state.tenant || state.me.tenant) return path;
  const join = path.includes("?") ? "&" : "?";
  return `${path}${join}tenant=${encodeURIComponent(state.tenant)}`;
}

function showError(where, error) {
  document.getElementById(where).textContent = error ? String(error.message || error) : "";
}

// -- log in / out ----------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  showError("login-error", null);
  state.token = document.getElementById("token").value.trim();
  const tenant = document.getElementById("tenant").value.trim();
  try {
    state.me = await api("/api/v1/me");
  } catch (error) {
    state.token = null;
    showError("login-error", error);
    return;
  }
  state.tenant = state.me.tenant || tenant || null;
  sessionStorage.setItem("iotmon.token", state.token);
  if (!state.me.tenant && tenant) sessionStorage.setItem("iotmon.tenant", tenant);
  start();
}

function logout(why) {
  for (const timer of state.timers) clearInterval(timer);
  state.timers = [];
  if (state.stream) state.stream.abort();
  state.stream = null;
  state.token = null;
  state.me = null;
  state.alerts.clear();
  state.cursor = null;
  sessionStorage.removeItem("iotmon.token");
  sessionStorage.removeItem("iotmon.tenant");
  document.getElementById("app-view").hidden = true;
  document.getElementById("login-view").hidden = false;
  for (const id of ["who", "live", "logout"]) document.getElementById(id).hidden = true;
  showError("login-error", why ? `Logged out: ${why}` : null);
}

function start() {
  document.getElementById("login-view").hidden = true;
  document.getElementById("app-view").hidden = false;
  const me = state.me;
  const scope = me.kind === "facility" ? ` · sites ${me.sites.join(", ")}` : "";
  const who = document.getElementById("who");
  who.textContent = `${me.kind} ${me.name || ""} · tenant ${state.tenant || "all"}${scope}`;
  for (const id of ["who", "live", "logout"]) document.getElementById(id).hidden = false;
  connect();
  for (const [load, every] of [[loadBuses, POLL_MS], [loadCameras, POLL_MS], [loadDevices, POLL_MS]]) {
    load();
    state.timers.push(setInterval(load, every));
  }
  state.timers.push(setInterval(renderAlerts, 10000)); // "n s ago"
}

// -- live alerts (server-sent events over fetch, so the token stays in a header) -------

function setLive(on, text) {
  const live = document.getElementById("live");
  live.className = `live ${on ? "on" : "off"}`;
  live.textContent = text;
}

async function connect() {
  const controller = new AbortController();
  state.stream = controller;
  let path = withTenant("/api/v1/console/alerts/stream");
  if (state.cursor !== null) path += `${path.includes("?") ? "&" : "?"}after=${state.cursor}`;
  try {
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
      signal: controller.signal,
    });
    if (!response.ok) {
      let problem = null;
      try { problem = await response.json(); } catch (_) { /* not a problem document */ }
      if (response.status === 401) { logout(problem && problem.detail); return; }
      throw new ProblemError(response.status, problem);
    }
    setLive(true, "live");
    showError("app-error", null);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        handleFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
    showError("app-error", error);
  }
  if (state.stream !== controller || controller.signal.aborted) return;
  setLive(false, "reconnecting…");
  setTimeout(() => { if (state.stream === controller) connect(); }, RETRY_MS);
}

function handleFrame(frame) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "id") id = Number(value);
    else if (field === "data") data.push(value);
  }
  if (!data.length) return;
  const body = JSON.parse(data.join("\n"));
  if (event === "snapshot") {
    state.alerts.clear();
    for (const alert of body.data) state.alerts.set(alert.id, alert);
  } else if (event === "alert") {
    state.alerts.set(body.id, body);
  } else if (event === "unavailable") {
    setLive(false, "alert database unavailable");
    return;
  }
  if (id !== null) state.cursor = id;
  setLive(true, "live");
  renderAlerts();
}

function subjectText(subject) {
  return ["bus", "child", "site", "device"]
    .filter((key) => subject[key])
    .map((key) => `${key} ${subject[key]}`)
    .join(" · ");
}

function renderAlerts() {
  const all = [...state.alerts.values()].sort((a, b) => (a.ts < b.ts ? 1 : -1));
  const active = all.filter((a) => a.active);
  const cleared = all.filter((a) => !a.active).slice(0, CLEARED_SHOWN);
  const open = new Set(
    [...document.querySelectorAll(".alert form[data-open]")].map((f) => f.dataset.open),
  );
  const activeList = document.getElementById("alerts-active");
  activeList.replaceChildren(
    ...(active.length ? active.map((a) => alertItem(a, open)) : [el("li", { class: "muted" }, "No active alerts.")]),
  );
  document.getElementById("alerts-cleared").replaceChildren(...cleared.map((a) => alertItem(a, open)));
  document.getElementById("alert-count").textContent = String(active.length);
}

function alertItem(alert, open) {
  const operator = state.me.kind === "operator";
  const canAck = alert.active && (operator || state.me.kind === "facility");
  const item = el(
    "li",
    {
      class: `alert ${alert.severity}`,
      "data-testid": "alert",
      "data-alert-id": alert.id,
      "data-rule": alert.rule,
      "data-state": alert.state,
      "data-active": alert.active ? "true" : "false",
    },
    el(
      "div",
      { class: "head" },
      el("span", { class: `badge ${alert.severity}` }, alert.severity),
      el("span", { class: "rule" }, alert.rule.replaceAll("_", " ")),
      el("span", { class: `badge state-${alert.state}`, "data-testid": "alert-state" }, alert.state),
    ),
    el("div", { class: "summary" }, alert.summary),
    el("div", { class: "meta" }, `${subjectText(alert.subject)} · ${when(alert.ts)}`),
    alert.acknowledged_by
      ? el("div", { class: "ack", "data-testid": "ack" },
        `acknowledged by ${alert.acknowledged_by}: ${alert.ack_reason || ""}`)
      : null,
  );
  if (canAck) {
    const key = `ack-${alert.id}`;
    const skey = `silence-${alert.id}`;
    if (open.has(key)) item.append(reasonForm(alert, key, "Reason for acknowledging", "Acknowledge", (r) => acknowledge(alert, r)));
    else if (open.has(skey)) item.append(reasonForm(alert, skey, "Why silence it for an hour", "Silence 1 h", (r) => silence(alert, r)));
    else {
      item.append(el("div", { class: "actions" },
        el("button", { type: "button", "data-testid": "ack-open", onclick: () => openForm(alert, key) }, "Acknowledge…"),
        operator ? el("button", { type: "button", "data-testid": "silence-open", onclick: () => openForm(alert, skey) }, "Silence…") : null,
      ));
    }
  }
  return item;
}

function openForm(alert, key) {
  const item = document.querySelector(`[data-alert-id="${alert.id}"]`);
  const label = key.startsWith("ack") ? "Reason for acknowledging" : "Why silence it for an hour";
  const action = key.startsWith("ack")
    ? ["Acknowledge", (r) => acknowledge(alert, r)]
    : ["Silence 1 h", (r) => silence(alert, r)];
  item.querySelector(".actions").replaceWith(reasonForm(alert, key, label, ...action));
  item.querySelector("input").focus();
}

function reasonForm(alert, key, label, verb, send) {
  const input = el("input", { name: "reason", placeholder: label, "aria-label": label, required: true, maxlength: 500, "data-testid": "reason" });
  const note = el("span", { class: "error", "data-testid": "form-error" });
  const form = el(
    "form",
    {
      "data-open": key,
      onsubmit: async (event) => {
        event.preventDefault();
        note.textContent = "";
        try {
          await send(input.value.trim());
          form.remove();
          renderAlerts(); // the actions again; the stream brings the alert's new state
          const item = document.querySelector(`[data-alert-id="${alert.id}"]`);
          if (item) item.append(el("div", { class: "meta", "data-testid": "sent" }, `${verb}: sent`));
        } catch (error) {
          note.textContent = error.message;
        }
      },
    },
    input,
    el("button", { type: "submit", class: "primary", "data-testid": "reason-submit" }, verb),
    note,
  );
  return form;
}

function acknowledge(alert, reason) {
  return api(`/api/v1/alerts/${encodeURIComponent(alert.tenant)}/${alert.id}/acknowledge`, {
    method: "POST",
    body: { reason },
  });
}

function silence(alert, comment) {
  const matchers = { rule: alert.rule };
  for (const key of ["bus", "child", "site", "device"]) {
    if (alert.subject[key]) matchers[key] = alert.subject[key];
  }
  return api("/api/v1/silences", {
    method: "POST",
    body: { tenant: alert.tenant, matchers, duration_s: 3600, comment },
  });
}

// -- buses, cameras, devices -----------------------------------------------------------

async function loadInto(where, path, render) {
  try {
    const answer = await api(withTenant(path));
    render(answer.data);
    showError("app-error", null);
  } catch (error) {
    if (state.token) showError("app-error", error);
  }
}

const loadBuses = () => loadInto("buses", "/api/v1/console/buses", renderBuses);
const loadCameras = () => loadInto("cameras", "/api/v1/console/cameras?limit=12", renderCameras);
const loadDevices = () => loadInto("devices", "/api/v1/devices", renderDevices);

const PHASES = { under_way: "run under way", ended: "run ended", unknown: "no run seen" };

function renderBuses(buses) {
  const box = document.getElementById("buses");
  if (!buses.length) { box.replaceChildren(el("p", { class: "muted" }, "No buses.")); return; }
  box.replaceChildren(...buses.map((bus) => {
    const sweep = bus.last_sweep;
    const inside = sweep ? sweep.reads.filter((r) => r.inside) : [];
    return el(
      "div",
      { class: "bus", "data-testid": "bus", "data-bus": bus.bus },
      el("h4", {}, el("span", {}, bus.bus), el("span", { class: "muted" }, PHASES[bus.phase] || bus.phase)),
      el("dl", {},
        el("dt", {}, "Route"), el("dd", {}, `${bus.route} · driver ${bus.driver}`),
        el("dt", {}, "Aboard"),
        el("dd", { "data-testid": "aboard-count" }, String(bus.aboard.length)),
        el("dt", {}, bus.phase === "ended" ? "Ended" : "Started"),
        el("dd", {}, bus.phase === "ended"
          ? `${when(bus.run_ended_at)}${bus.run_end_place ? ` at ${bus.run_end_place}` : ""}`
          : when(bus.run_started_at)),
        el("dt", {}, "Last sweep"),
        el("dd", { "data-testid": "last-sweep" }, sweep
          ? `${sweep.sweep_id}: ${sweep.received}${sweep.expected !== null ? `/${sweep.expected}` : ""} reads${sweep.complete ? ", complete" : ""}, ${inside.length} inside${inside.length ? ` (${inside.map((r) => r.child || r.tag).join(", ")})` : ""} · ${when(sweep.finished_at || sweep.started_at)}`
          : "none"),
        el("dt", {}, "Position"),
        el("dd", {}, bus.position ? `${bus.position.place || `${bus.position.lat.toFixed(4)}, ${bus.position.lon.toFixed(4)}`} · ignition ${bus.ignition_on ? "on" : "off"}` : "–"),
        bus.people_seen ? el("dt", {}, "Camera") : null,
        bus.people_seen ? el("dd", {}, `${bus.people_seen.people} seen · ${when(bus.people_seen.ts)}`) : null,
      ),
      bus.aboard.length
        ? el("ul", { class: "aboard", "data-testid": "aboard" },
          bus.aboard.map((c) => el("li", { class: c.child ? "child" : "" },
            `${c.name || c.child || "unknown tag"} (${c.tag}) boarded ${when(c.boarded_at)}`)))
        : null,
    );
  }));
}

function renderCameras(events) {
  const box = document.getElementById("cameras");
  if (!events.length) { box.replaceChildren(el("p", { class: "muted" }, "No events.")); return; }
  box.replaceChildren(...events.map((event) => {
    const what = event.type === "occupancy" ? `${event.data.people} people`
      : event.data.label ? `${event.data.label} ${Math.round((event.data.confidence || 0) * 100)} %`
        : event.type.replaceAll("_", " ");
    return el(
      "div",
      { class: "camera", "data-testid": "camera-event", "data-device": event.device },
      event.snapshot_url
        ? el("img", { src: event.snapshot_url, alt: `${event.device} ${event.type}`, loading: "lazy", "data-testid": "snapshot" })
        : null,
      el("div", {}, el("strong", {}, event.device), ` · ${event.type}`, el("br"), what, el("br"), el("span", { class: "muted" }, when(event.ts))),
    );
  }));
}

function renderDevices(devices) {
  const counts = { online: 0, offline: 0, unknown: 0 };
  for (const device of devices) counts[device.state] = (counts[device.state] || 0) + 1;
  document.getElementById("device-summary").textContent =
    `${counts.online} online · ${counts.offline} offline`;
  document.getElementById("devices").replaceChildren(...devices.map((device) => el(
    "tr",
    { "data-testid": "device", "data-device": device.device, "data-state": device.state },
    el("td", {}, device.device),
    el("td", {}, el("span", { class: `state ${device.state}` }, device.state)),
    el("td", {}, when(device.state_since)),
    el("td", {}, when(device.last_seen)),
  )));
}

document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("login").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", () => logout());
  const saved = sessionStorage.getItem("iotmon.token");
  if (!saved) return;
  state.token = saved;
  try {
    state.me = await api("/api/v1/me");
    state.tenant = state.me.tenant || sessionStorage.getItem("iotmon.tenant");
    start();
  } catch (_) {
    logout();
  }
});
