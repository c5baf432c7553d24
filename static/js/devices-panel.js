// The control room's devices panel (docs/devices.md, "Control room"): the shop's devices
// with online/offline and last seen, the live cue log (sent → acked / failed, latency), and
// buttons to fire a cue by hand. Live updates come over the control room's socket, which
// control.js re-dispatches as `control:message` events on #control; each (re)connect's
// snapshot makes this panel read its state again over the API, so nothing missed while the
// socket was away stays missing.
import { api, h } from "./live.js";
import { apiRetrying, busyAnswer } from "./retry.js";

const root = document.getElementById("control");
const initial = JSON.parse(document.getElementById("devices-initial").textContent);
const streamId = initial.stream;
const LIMIT = initial.limit || 50;
const RANK = { queued: 0, sent: 1, acked: 2, failed: 2 };
const EVENT_LABELS = { manual: "by hand" };

const timeZone = root?.dataset.timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const clockFormat = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone });
const fullFormat = new Intl.DateTimeFormat([], {
  day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone, timeZoneName: "short",
});

const els = {
  devices: document.getElementById("devices-body"),
  log: document.getElementById("cue-log"),
  note: document.getElementById("cue-log-note"),
};

const state = {
  devices: new Map(initial.devices.map((d) => [d.id, d])),
  cues: new Map(),
  errors: new Map(), // device id -> message shown under its buttons
  busy: new Set(), // device ids with a cue being fired
  retrying: new Set(), // of those, the ones the server was too busy for, waiting to try again
  fresh: new Set(), // cue ids just added (animated once)
};
for (const cue of initial.cues) state.cues.set(cue.id, cue);

// -- merging ---------------------------------------------------------------------------------------

/** Merge what is known of a cue; a status never goes back (acked and failed are final). */
function mergeCue(update) {
  const known = state.cues.get(update.id);
  if (!known) {
    state.cues.set(update.id, { ...update });
    state.fresh.add(update.id);
    return;
  }
  const { status, ...rest } = update;
  for (const [key, value] of Object.entries(rest)) if (value !== undefined && value !== null) known[key] = value;
  if (status && (RANK[status] ?? 0) >= (RANK[known.status] ?? 0) && RANK[known.status] !== 2) known.status = status;
}

function when(cue) {
  return cue.issued_at || cue.sent_at || cue.at || null;
}

function ordered() {
  const cues = [...state.cues.values()].sort(
    (a, b) => (Date.parse(when(b)) || 0) - (Date.parse(when(a)) || 0) || b.id - a.id,
  );
  for (const old of cues.slice(LIMIT)) state.cues.delete(old.id);
  return cues.slice(0, LIMIT);
}

// -- rendering -------------------------------------------------------------------------------------

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return clockFormat.format(new Date(iso));
}

function renderDevices() {
  const rows = [];
  let room = null;
  const devices = [...state.devices.values()].sort(
    (a, b) => (initial.rooms[a.room] || "").localeCompare(initial.rooms[b.room] || "") || a.name.localeCompare(b.name) || a.id - b.id,
  );
  const rooms = new Set(devices.map((d) => d.room));
  for (const device of devices) {
    if (rooms.size > 1 && device.room !== room) {
      room = device.room;
      rows.push(h("tr", { class: "room-row" }, h("th", { colspan: 4, scope: "colgroup" }, initial.rooms[room] || `Room ${room}`)));
    }
    const kinds = initial.cue_kinds[device.kind] || [];
    const error = state.errors.get(device.id);
    rows.push(
      h("tr", { dataset: { device: device.id, online: String(device.online) } },
        h("th", { scope: "row" },
          h("span", { class: "device__name" }, device.name),
          h("span", { class: "device__kind muted small" }, initial.kind_labels[device.kind] || device.kind)),
        h("td", {}, h("span", { class: "device-state", dataset: { online: String(device.online) } }, device.online ? "online" : "offline")),
        h("td", { class: "small" },
          h("time", { class: "device__seen", datetime: device.last_seen || "", title: device.last_seen ? fullFormat.format(new Date(device.last_seen)) : "" }, ago(device.last_seen))),
        h("td", {},
          h("div", { class: "device__fire" },
            kinds.map((kind) =>
              h("button", {
                type: "button", class: "secondary small", dataset: { kind },
                disabled: state.busy.has(device.id),
                "aria-label": `Fire ${kind} on ${device.name}`,
                onclick: () => fire(device, kind),
              }, kind))),
          state.retrying.has(device.id)
            ? h("p", { class: "device__busy", role: "status" }, "Busy — retrying…") : "",
          error ? h("p", { class: "device__error", role: "alert" }, error) : ""),
      ),
    );
  }
  els.devices.replaceChildren(...rows);
}

function renderLog() {
  const cues = ordered();
  const rows = cues.map((cue) => {
    const device = state.devices.get(cue.device);
    const at = when(cue);
    const latency = cue.status === "acked" && typeof cue.latency_ms === "number" ? `${cue.latency_ms} ms` : "—";
    const row = h("tr", { dataset: { cue: cue.id, status: cue.status }, class: state.fresh.has(cue.id) ? "enter" : "" },
      h("td", {}, at ? h("time", { datetime: at, title: fullFormat.format(new Date(at)) }, clockFormat.format(new Date(at))) : "—"),
      h("td", {}, device ? device.name : `#${cue.device}`),
      h("td", {}, cue.kind),
      h("td", { class: "small" }, cue.event ? EVENT_LABELS[cue.event] || cue.event : "—"),
      h("td", {},
        h("span", { class: "cue-status", dataset: { status: cue.status } }, cue.status),
        cue.detail ? h("span", { class: "cue__detail" }, cue.detail) : ""),
      h("td", { class: "num cue__latency" }, latency),
    );
    return row;
  });
  state.fresh.clear();
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No cues yet. They appear here as your rules fire.")));
  els.log.replaceChildren(...rows);
}

function render() {
  renderDevices();
  renderLog();
}

// -- the socket and resync --------------------------------------------------------------------------

let resyncing = null;
async function resync() {
  if (resyncing) return resyncing;
  resyncing = (async () => {
    const [devices, cues] = await Promise.all([
      api("/api/v1/devices/"),
      api(`/api/v1/devices/cues/?stream=${streamId}&streamless=1`),
    ]);
    if (devices.ok) {
      const known = new Set(initial.devices.map((d) => d.id));
      state.devices = new Map(devices.data.filter((d) => known.has(d.id) || initial.rooms[d.room]).map((d) => [d.id, d]));
    }
    if (cues.ok) for (const cue of cues.data.slice(0, LIMIT)) mergeCue(cue);
    state.fresh.clear();
    render();
  })();
  try {
    await resyncing;
  } finally {
    resyncing = null;
  }
}

let resyncTimer = null;
function resyncSoon() {
  clearTimeout(resyncTimer);
  resyncTimer = setTimeout(resync, 300);
}

root?.addEventListener("control:message", (event) => {
  const message = event.detail;
  switch (message.type) {
    case "snapshot":
      resync(); // the first connect, and every reconnect
      break;
    case "cue": {
      const known = state.cues.has(message.cue.id);
      mergeCue({ ...message.cue, at: message.at });
      const device = state.devices.get(message.cue.device);
      if (device && message.cue.status === "acked" && message.at) device.last_seen = message.at;
      if (!known && !message.cue.event) resyncSoon(); // failed before it was sent: read its row
      render();
      break;
    }
    case "device": {
      const device = state.devices.get(message.id);
      if (!device) {
        resyncSoon(); // a device added since the page opened
        break;
      }
      device.online = message.online;
      if (message.online && message.at) device.last_seen = message.at;
      renderDevices();
      break;
    }
    default:
      break;
  }
});

// -- firing by hand ---------------------------------------------------------------------------------

// Firing is not idempotent: every POST that reaches the view is a new cue, and the endpoint
// takes no Idempotency-Key (only buys do, docs/buying.md). So only a refusal is sent again:
// 503 overloaded or 429 rate_limited, refused before any cue was made (docs/overload.md,
// "The control room retries"). A request whose answer was lost is never repeated: it may
// have fired, and the cue log shows whether it did.
async function fire(device, kind) {
  state.busy.add(device.id);
  state.errors.delete(device.id);
  renderDevices();
  const request = { method: "POST", body: { kind, stream: streamId } };
  const result = await apiRetrying(`/api/v1/devices/${device.id}/cues/`, request, {
    onBusy() {
      state.retrying.add(device.id);
      renderDevices();
    },
  });
  state.busy.delete(device.id);
  state.retrying.delete(device.id);
  if (result.ok) {
    mergeCue(result.data);
  } else {
    const data = result.data || {};
    let message = data.message || `That didn't work (HTTP ${result.status}).`;
    if (busyAnswer(result)) message = "Still too busy — no cue was sent. Try again in a moment.";
    state.errors.set(
      device.id,
      result.network ? "You're offline: no cue was sent." : `${message}${data.code ? ` (${data.code})` : ""}`,
    );
  }
  render();
}

render();
setInterval(() => {
  for (const el of els.devices.querySelectorAll("time.device__seen")) {
    const iso = el.getAttribute("datetime");
    el.textContent = ago(iso || null);
  }
}, 5_000);
if (els.note) els.note.textContent = `Latency: sent to the device's ack, in ms. Newest first, last ${LIMIT}; times in ${timeZone}.`;
