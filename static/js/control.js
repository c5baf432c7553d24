// The creator's control room: viewers, live sales, totals, a sales chart, stock per pin,
// and the stream's controls (go live, end, pin, unpin, open and close flash deals).
import { LiveSocket, countdown, h, money, wsUrl } from "./live.js";
import { apiRetrying, busyAnswer } from "./retry.js";

const SVG = "http://www.w3.org/2000/svg";
const FEED_MAX = 30;
const CHART_MINUTES = 30;

const root = document.getElementById("control");
const streamId = Number(root.dataset.streamId);
const shopCurrency = root.dataset.currency || "USD";
const read = (id) => JSON.parse(document.getElementById(id).textContent);

// Times are shown in the creator's zone: the one the server has active for them (a user
// preference), else the browser's; every time on the page says which zone it is in.
const timeZone = root.dataset.timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const clockFormat = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", timeZone });
const dateTimeFormat = new Intl.DateTimeFormat([], {
  weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone, timeZoneName: "short",
});
const clock = (when) => clockFormat.format(when);
const dateTime = (when) => dateTimeFormat.format(when);

const els = {
  banner: document.getElementById("conn-banner"),
  statusPill: document.getElementById("status-pill"),
  start: document.getElementById("start-btn"),
  end: document.getElementById("end-btn"),
  viewers: document.getElementById("kpi-viewers"),
  orders: document.getElementById("kpi-orders"),
  revenue: document.getElementById("kpi-revenue"),
  chart: document.getElementById("chart"),
  feed: document.getElementById("sales-feed"),
  pinsBody: document.getElementById("pins-body"),
  pinForm: document.getElementById("pin-form"),
  pinSelect: document.getElementById("pin-sku"),
  deals: document.getElementById("deals"),
  status: document.getElementById("control-status"),
  startsAt: document.getElementById("starts-at"),
  title: document.getElementById("control-title"),
  chartCaption: document.getElementById("chart-caption"),
};

const state = {
  stream: read("control-initial"),
  catalog: read("control-catalog"),
  deals: read("control-deals"),
  sales: null, // {orders, revenue: Number, perMinute: Map(minuteMs -> {orders, revenue})}
  seq: 0,
  socketLive: false,
  everLive: false,
  // Controls whose request is out, by API path ("start", "pins/", "deals/7/open", ...): false
  // while it is sent, true while the server was too busy for it and it waits to try again.
  pending: new Map(),
};
state.pins = state.stream.pins;

// The controls' API paths, under /api/v1/streams/<id>/ (docs/streams.md).
const PIN_PATH = "pins/";
const unpinPath = (sku) => `pins/${encodeURIComponent(sku)}/`;
const dealPath = (deal, action) => `deals/${deal.id}/${action}`;

/** A control's label: "Retrying…" while the server is too busy for it (see control()). */
function pendingLabel(path, label) {
  return state.pending.get(path) ? "Retrying…" : label;
}

function setSales(sales) {
  const perMinute = new Map();
  for (const row of sales.series || []) {
    perMinute.set(Date.parse(row.minute), { orders: row.orders, revenue: Number(row.revenue) });
  }
  state.sales = { orders: sales.orders, revenue: Number(sales.revenue), perMinute };
  renderFeed(sales.recent || []);
}
setSales(read("control-sales"));

// -- messages -----------------------------------------------------------------------------------

let statusTimer = null;
function announce(text, tone = "info", { sticky = false } = {}) {
  clearTimeout(statusTimer);
  els.status.className = `buy-status toast ${tone}`;
  els.status.replaceChildren(
    h("span", {}, text),
    h("button", { type: "button", class: "icon-button", "aria-label": "Dismiss", onclick: clear }, "×"),
  );
  if (!sticky) statusTimer = setTimeout(clear, tone === "error" ? 12_000 : 5_000);
  function clear() {
    els.status.replaceChildren();
    els.status.className = "buy-status";
  }
}

function updateBanner() {
  const offline = !navigator.onLine;
  let text = "";
  if (offline) text = "You are offline. Figures are frozen until the connection is back.";
  else if (!state.socketLive && state.everLive) text = "Live feed interrupted — reconnecting…";
  els.banner.hidden = !text;
  els.banner.className = `conn-banner ${offline ? "offline" : "reconnecting"}`;
  els.banner.textContent = text;
}

// -- rendering -----------------------------------------------------------------------------------

function renderStatus() {
  const status = state.stream.status;
  els.statusPill.dataset.status = status;
  els.statusPill.textContent =
    { live: "Live", scheduled: "Scheduled", ended: "Ended", deleted: "Deleted", cancelled: "Cancelled" }[status] || status;
  els.start.disabled = status !== "scheduled" || state.pending.has("start");
  els.end.disabled = status === "ended" || status === "deleted" || status === "cancelled" || state.pending.has("end");
  els.start.textContent = pendingLabel("start", "Go live");
  els.end.textContent = pendingLabel("end", "End stream");
  lockIfClosed();
}

/** A deleted or cancelled drop (stream.deleted, stream.cancelled): nothing here can be
 *  changed any more, including rows rendered after the status arrived. */
function lockIfClosed() {
  if (state.stream.status !== "deleted" && state.stream.status !== "cancelled") return;
  document.querySelectorAll("#control button, #control select").forEach((el) => { el.disabled = true; });
}

function renderTotals() {
  els.orders.textContent = String(state.sales.orders);
  els.revenue.textContent = money(state.sales.revenue, shopCurrency);
}

function dealFor(sku) {
  return state.pins.find((p) => p.sku === sku)?.deal || null;
}

function renderPins() {
  const rows = state.pins.map((pin) => {
    const deal = pin.deal;
    const stockCell = h("td", { class: "num", dataset: { label: "Stock" } });
    stockCell.append(h("span", { class: `stock ${pin.available <= 0 ? "out" : pin.available <= 5 ? "low" : "ok"}` }, String(pin.available)));
    if (deal) stockCell.append(h("span", { class: "muted small" }, ` + ${deal.remaining} in deal`));
    return h(
      "tr",
      { dataset: { sku: pin.sku } },
      h("th", { scope: "row" }, h("span", { class: "cell-title" }, pin.title), h("span", { class: "muted small mono" }, pin.sku)),
      h("td", { class: "num", dataset: { label: "Price" } }, money(pin.price, pin.currency)),
      stockCell,
      h(
        "td",
        { dataset: { label: "Deal" } },
        deal
          ? h("span", { class: "deal-tag" }, `${money(deal.price, pin.currency)} · ${deal.remaining} left · `,
              h("span", { class: "deal-timer", dataset: { endsAt: deal.ends_at } }, timerText(deal.ends_at)))
          : h("span", { class: "muted" }, "—"),
      ),
      h(
        "td",
        { class: "actions" },
        h("button", { type: "button", class: "secondary small", disabled: state.pending.has(unpinPath(pin.sku)),
          onclick: () => unpin(pin.sku) },
          pendingLabel(unpinPath(pin.sku), "Unpin"), h("span", { class: "visually-hidden" }, ` ${pin.title}`)),
      ),
    );
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "Nothing pinned yet. Pin a product to show it to viewers.")));
  els.pinsBody.replaceChildren(...rows);

  const pinned = new Set(state.pins.map((p) => p.sku));
  const options = state.catalog
    .filter((item) => !pinned.has(item.sku))
    .map((item) => h("option", { value: item.sku }, `${item.title} (${item.sku}) · ${money(item.price, item.currency)}`));
  if (!options.length) options.push(h("option", { value: "" }, "Everything is pinned"));
  const chosen = els.pinSelect.value; // kept across a re-render (a live update, a control's state)
  els.pinSelect.replaceChildren(...options);
  if (options.some((option) => option.value === chosen)) els.pinSelect.value = chosen;
  const pinButton = els.pinForm.querySelector("button");
  pinButton.disabled = !state.catalog.some((item) => !pinned.has(item.sku)) || state.pending.has(PIN_PATH);
  pinButton.textContent = pendingLabel(PIN_PATH, "Pin");
  lockIfClosed();
}

function renderDeals() {
  const items = state.deals.map((deal) => {
    const title = state.catalog.find((c) => c.sku === deal.sku)?.title || deal.sku;
    const live = dealFor(deal.sku);
    const remaining = live && live.id === deal.id ? live.remaining : null;
    const actions = [];
    const open = dealPath(deal, "open"), close = dealPath(deal, "close");
    if (deal.status === "scheduled") {
      actions.push(h("button", { type: "button", class: "small", disabled: state.pending.has(open),
        onclick: () => dealAction(deal, "open") },
        pendingLabel(open, "Open now"), h("span", { class: "visually-hidden" }, `: ${title}`)));
    }
    if (deal.status !== "closed") {
      actions.push(h("button", { type: "button", class: "secondary small", disabled: state.pending.has(close),
        onclick: () => dealAction(deal, "close") },
        pendingLabel(close, deal.status === "open" ? "Close" : "Cancel"), h("span", { class: "visually-hidden" }, `: ${title}`)));
    }
    return h(
      "li",
      { class: `deal deal--${deal.status}` },
      h("div", {},
        h("strong", {}, title), " ",
        h("span", { class: `status-pill`, dataset: { status: deal.status === "open" ? "live" : deal.status } }, deal.status),
        h("p", { class: "muted small deal__terms" },
          `${money(deal.price, shopCurrency)} · ${deal.quantity} units${deal.per_buyer_limit ? ` · max ${deal.per_buyer_limit} per buyer` : ""}`,
          deal.status === "open" && remaining !== null ? ` · ${remaining} of ${deal.quantity} left` : "",
          deal.status === "open" ? h("span", {}, " · ", h("span", { class: "deal-timer", dataset: { endsAt: deal.closes_at } }, timerText(deal.closes_at))) : "",
        ),
        deal.status === "scheduled"
          ? h("p", { class: "muted small deal__when" },
              `Opens ${dateTime(new Date(deal.opens_at))}; its ${deal.quantity} units are set aside then.`)
          : "",
      ),
      h("div", { class: "deal__actions" }, actions),
    );
  });
  if (!items.length) items.push(h("li", { class: "muted" }, "No flash deals for this stream."));
  els.deals.replaceChildren(...items);
  lockIfClosed();
}

/** The latest sales, newest first (the server's ``recent``), replacing the list. */
function renderFeed(recent) {
  els.feed.replaceChildren();
  for (const sale of [...recent].reverse()) addSale(sale, { count: false, render: false });
  if (!els.feed.children.length && !state.sales?.orders) {
    els.feed.append(h("li", { class: "muted empty" }, "No sales yet."));
  }
}

function addSale(sale, { count = true, render = true } = {}) {
  const when = sale.at ? new Date(sale.at) : new Date();
  const total = Number(sale.total);
  if (count) {
    state.sales.orders += 1;
    state.sales.revenue += total;
    const minute = Math.floor(when.getTime() / 60_000) * 60_000;
    const bucket = state.sales.perMinute.get(minute) || { orders: 0, revenue: 0 };
    bucket.orders += 1;
    bucket.revenue += total;
    state.sales.perMinute.set(minute, bucket);
  }
  const items = (sale.lines || []).map((l) => {
    const title = state.catalog.find((c) => c.sku === l.sku)?.title || l.sku;
    return `${l.quantity} × ${title}`;
  });
  els.feed.querySelector(".empty")?.remove();
  els.feed.prepend(
    h("li", { class: "sale enter" },
      h("span", { class: "sale__items" }, items.join(", ") || `Order #${sale.order}`),
      h("span", { class: "sale__total" }, money(total, sale.currency || shopCurrency)),
      h("time", { class: "muted small", datetime: when.toISOString(), title: dateTime(when) }, clock(when)),
    ),
  );
  while (els.feed.children.length > FEED_MAX) els.feed.lastElementChild.remove();
  if (!render) return;
  renderTotals();
  renderChart();
}

/** Revenue per minute over the last CHART_MINUTES minutes, as bars in an inline SVG. */
function renderChart() {
  const now = Math.floor(Date.now() / 60_000) * 60_000;
  const from = now - (CHART_MINUTES - 1) * 60_000;
  const buckets = [];
  for (let t = from; t <= now; t += 60_000) buckets.push({ t, ...(state.sales.perMinute.get(t) || { orders: 0, revenue: 0 }) });
  // Drawn at the box's real width, so the text stays legible on a phone.
  const W = Math.max(280, Math.round(els.chart.clientWidth || 600));
  const H = W < 500 ? 170 : 210;
  const left = 58, bottom = 38, top = 22;
  const max = Math.max(1, ...buckets.map((b) => b.revenue));
  const step = niceStep(max);
  const yMax = Math.ceil(max / step) * step;
  const plotW = W - left - 8, plotH = H - top - bottom;
  const bw = plotW / buckets.length;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const recent = buckets.reduce((s, b) => s + b.orders, 0);
  svg.setAttribute("aria-label", `Revenue per minute in ${shopCurrency}, last ${CHART_MINUTES} minutes (${timeZone}): ${recent} orders, peak ${money(max === 1 && !recent ? 0 : max, shopCurrency)} a minute.`);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  for (let v = 0; v <= yMax; v += step) {
    const y = top + plotH - (v / yMax) * plotH;
    add("line", { x1: left, x2: W - 8, y1: y, y2: y, class: "grid" });
    add("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, compactMoney(v, step));
  }
  // Axis titles: what the bars measure, and in what.
  add("text", { x: 0, y: 12, class: "axis axis-title", "text-anchor": "start" }, `${shopCurrency} per minute`);
  add("text", { x: W - 8, y: H - 2, class: "axis axis-title", "text-anchor": "end" }, `time (${timeZone})`);
  buckets.forEach((b, i) => {
    const bh = (b.revenue / yMax) * plotH;
    if (b.revenue > 0) {
      const bar = add("rect", { x: left + i * bw + 1.5, y: top + plotH - bh, width: Math.max(1, bw - 3), height: bh, rx: 2, class: i === buckets.length - 1 ? "bar now" : "bar" });
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${clock(new Date(b.t))}: ${b.orders} ${b.orders === 1 ? "order" : "orders"}, ${money(b.revenue, shopCurrency)}`;
      bar.append(title);
    }
    const every = W < 500 ? 10 : 5;
    if ((i % every === 0 && buckets.length - 1 - i >= every / 2) || i === buckets.length - 1) {
      const label = i === buckets.length - 1 ? "now" : clock(new Date(b.t));
      add("text", { x: left + i * bw + bw / 2, y: H - 20, class: "axis", "text-anchor": "middle" }, label);
    }
  });
  els.chart.replaceChildren(svg);
}

function timerText(iso) {
  const left = countdown(iso);
  return left ? `ends in ${left}` : "ending";
}

function niceStep(max) {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
}

/** An axis value in the shop's currency, short: "$0", "$50", "$1.5K". */
const compactFormats = new Map();
function compactMoney(v, step) {
  const key = step < 1 ? "cents" : "whole";
  let format = compactFormats.get(key);
  if (!format) {
    try {
      format = new Intl.NumberFormat([], {
        style: "currency", currency: shopCurrency, notation: "compact",
        maximumFractionDigits: step < 1 ? 2 : 1,
      });
    } catch (error) {
      format = { format: (n) => `${n} ${shopCurrency}` };
    }
    compactFormats.set(key, format);
  }
  return format.format(v);
}

// -- socket -------------------------------------------------------------------------------------

function applyStream(body) {
  state.stream = body;
  state.pins = body.pins;
  syncDealsFromPins();
  renderStatus();
  renderPins();
  renderDeals();
}

/** A deal shown on a pin is open; one we believed open that is not there any more is closed. */
function syncDealsFromPins() {
  const open = new Map(state.pins.filter((p) => p.deal).map((p) => [p.deal.id, p.deal]));
  const pinned = new Set(state.pins.map((p) => p.sku));
  for (const deal of state.deals) {
    if (open.has(deal.id)) deal.status = "open";
    else if (deal.status === "open" && pinned.has(deal.sku)) deal.status = "closed"; // unpinned: unknown
  }
}

function handle(message) {
  switch (message.type) {
    case "snapshot":
      state.seq = message.seq || 0;
      applyStream({ ...message.stream, pins: message.pins });
      if (message.sales) setSales(message.sales);
      if (typeof message.viewers === "number") els.viewers.textContent = String(message.viewers);
      renderTotals();
      renderChart();
      break;
    case "sales":
      // A refund: the server's totals, chart and latest sales, read again.
      setSales(message.sales);
      renderTotals();
      renderChart();
      break;
    case "stock":
      if (typeof message.seq === "number") {
        if (message.seq <= state.seq) return;
        state.seq = message.seq;
      }
      for (const [sku, available] of Object.entries(message.stock || {})) {
        const pin = state.pins.find((p) => p.sku === sku);
        if (pin) pin.available = available;
        const item = state.catalog.find((c) => c.sku === sku);
        if (item) item.available = available;
      }
      renderPins();
      break;
    case "deal": {
      const pin = state.pins.find((p) => p.sku === message.sku);
      if (pin) pin.deal = message.deal;
      if (message.deal) {
        const known = state.deals.find((d) => d.id === message.deal.id);
        if (known) known.status = "open";
      } else {
        for (const d of state.deals) if (d.sku === message.sku && d.status === "open") d.status = "closed";
      }
      renderPins();
      renderDeals();
      break;
    }
    case "price": {
      const pin = state.pins.find((p) => p.sku === message.sku);
      if (pin) pin.price = message.price;
      renderPins();
      break;
    }
    case "pin":
      state.pins = message.pins;
      renderPins();
      renderDeals();
      break;
    case "deal_scheduled": {
      // Scheduled (or its terms changed) in the admin while this page is open.
      const index = state.deals.findIndex((d) => d.id === message.deal.id);
      if (index >= 0) state.deals[index] = { ...state.deals[index], ...message.deal };
      else state.deals.push(message.deal);
      state.deals.sort((a, b) => a.opens_at.localeCompare(b.opens_at) || a.id - b.id);
      renderDeals();
      break;
    }
    case "deal_cancelled":
      // Cancelled before it opened (here, in another control room, or by the stream's end).
      for (const d of state.deals) if (d.id === message.id) d.status = "closed";
      renderDeals();
      break;
    case "deal_deleted":
      state.deals = state.deals.filter((d) => d.id !== message.id);
      renderDeals();
      break;
    case "presence":
      els.viewers.textContent = String(message.viewers);
      break;
    case "sale":
      addSale(message);
      break;
    case "stream_updated":
      // Edited in the admin (stream.updated): the header shows the new title and start.
      if (els.title) els.title.textContent = message.title;
      if (message.status === "scheduled" && message.starts_at) {
        const when = new Date(message.starts_at);
        els.startsAt?.replaceChildren("starts ", h("time", { datetime: when.toISOString() }, dateTime(when)));
      }
      break;
    case "stream":
      if (message.status === "deleted") {
        els.startsAt?.replaceChildren("this stream was deleted");
      } else if (message.status !== state.stream.status && ["live", "ended", "cancelled"].includes(message.status)) {
        // The header said "starts <time>" until a reload: say what just happened, and when.
        const now = new Date();
        const label = { live: "live since", ended: "ended", cancelled: "cancelled" }[message.status];
        els.startsAt?.replaceChildren(`${label} `, h("time", { datetime: now.toISOString() }, dateTime(now)));
      }
      state.stream.status = message.status;
      renderStatus();
      break;
    default:
      break; // interaction (the sale feed covers purchases), pong
  }
}

const socket = new LiveSocket({
  connectUrl: async () => wsUrl(`/ws/streams/${streamId}/control/`), // cookie auth
  onMessage(message) {
    handle(message);
    // Panels of other apps (e.g. devices) hear the socket too: every message, the snapshot
    // of each (re)connect included (docs/streams.md, "Control-room panels").
    root.dispatchEvent(new CustomEvent("control:message", { detail: message }));
  },
  onState(live) {
    state.socketLive = live === "live";
    if (state.socketLive) state.everLive = true;
    updateBanner();
  },
});
window.addEventListener("online", updateBanner);
window.addEventListener("offline", updateBanner);

// -- controls -------------------------------------------------------------------------------------

// Every control is one request to the stream's API (docs/streams.md). When the server is too
// busy for it (503 overloaded, 429 rate_limited: nothing was done), it is sent again after
// Retry-After plus a growing random wait, six tries at most (static/js/retry.js), its button
// saying "Retrying…" and the room "Busy — retrying…"; then done, or a clear error
// (docs/overload.md, "The control room retries"). These endpoints take no Idempotency-Key
// (only buys do, docs/buying.md), and need none: each sets a state, so sending one twice
// changes nothing more than once. Going live when live, ending an ended stream, pinning a
// pinned product, unpinning one not pinned, opening a deal no longer scheduled and closing a
// closed one are all no-ops (apps/streams/services.py). A retry is only ever sent after a
// refusal anyway, never after an answer that was lost.

function renderControls() {
  renderStatus();
  renderPins();
  renderDeals();
}

async function control(path, { method = "POST", body, done } = {}) {
  if (state.pending.has(path)) return { ok: false, pending: true }; // already on its way
  state.pending.set(path, false);
  renderControls();
  const result = await apiRetrying(`/api/v1/streams/${streamId}/${path}`, { method, body }, {
    onBusy() {
      state.pending.set(path, true);
      renderControls();
      announce("Busy — retrying…", "info", { sticky: true });
    },
  });
  state.pending.delete(path);
  if (result.ok) {
    applyStream(result.data);
    if (done) announce(done, "success");
    return result;
  }
  let message;
  if (result.network) message = "You're offline — nothing was changed.";
  else if (busyAnswer(result)) message = "Still too busy — nothing was changed. Try again in a moment.";
  else message = result.data?.message || `That didn't work (HTTP ${result.status}).`;
  announce(message, "error");
  renderControls();
  return result;
}

els.start.addEventListener("click", () => control("start", { done: "You're live." }));
els.end.addEventListener("click", () => {
  if (!window.confirm("End the stream for everyone? Open deals close and their stock goes back.")) return;
  control("end", { done: "Stream ended." });
});

els.pinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const sku = els.pinSelect.value;
  if (!sku) return;
  control(PIN_PATH, { body: { sku }, done: `Pinned ${sku}.` });
});

function unpin(sku) {
  control(unpinPath(sku), { method: "DELETE", done: `Unpinned ${sku}.` });
}

async function dealAction(deal, action) {
  const result = await control(dealPath(deal, action), {});
  if (!result.ok) return;
  const pinned = state.pins.some((p) => p.sku === deal.sku);
  const openNow = pinned ? state.pins.some((p) => p.deal && p.deal.id === deal.id) : action === "open";
  deal.status = openNow ? "open" : "closed";
  renderDeals();
  announce(
    action === "open"
      ? openNow ? "Deal open." : "The deal could not open (its window has passed)."
      : "Deal closed; unsold units are back in stock.",
    action === "open" && !openNow ? "error" : "success",
  );
}

// -- go -----------------------------------------------------------------------------------------------

function renderTimes() {
  const time = els.startsAt?.querySelector("time");
  if (time) {
    time.textContent = dateTime(new Date(time.getAttribute("datetime")));
    els.startsAt.querySelector(".zone-name")?.remove(); // the formatted time names its zone
  }
  if (els.chartCaption) {
    els.chartCaption.textContent =
      `Revenue of paid orders per minute in ${shopCurrency}, last ${CHART_MINUTES} minutes; times in ${timeZone}.`;
  }
}

renderTimes();
renderStatus();
renderTotals();
renderPins();
renderDeals();
renderChart();
setInterval(() => {
  document.querySelectorAll(".deal-timer").forEach((el) => {
    el.textContent = timerText(el.dataset.endsAt);
  });
}, 1_000);
setInterval(renderChart, 30_000); // the window slides
if ("ResizeObserver" in window) {
  let lastWidth = 0;
  new ResizeObserver(() => {
    const width = Math.round(els.chart.clientWidth);
    if (Math.abs(width - lastWidth) < 8) return;
    lastWidth = width;
    renderChart();
  }).observe(els.chart);
}
socket.start();
