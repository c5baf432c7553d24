// The stream page: pinned products with live stock, flash deals, one-tap buy, the
// purchase ticker; realtime over the viewer WebSocket, polling while it is down.
import { LiveSocket, api, countdown, h, money, reducedMotion, wsUrl } from "./live.js";
import { apiRetrying, busyAnswer } from "./retry.js";

const LOW_STOCK = 5;
const POLL_EVERY_MS = 3_000;
// Polling starts this long after the socket drops, at a random moment: a socket usually comes
// back within its first retries, and a thousand pages cut at once by a server restart must
// not all poll it at the same instant as it comes back (bench/stampede.py, reconnect storm).
const POLL_FIRST_MS = [5_000, 10_000];
// A poll that fails (no answer, or an error) doubles the wait before the next, up to this,
// and a slow answer stretches it to ten times the answer's time: a server that is down or
// overloaded is not asked every 3 s by every page.
const POLL_MAX_MS = 30_000;
// A reconnect reuses the viewer token while it has this long left (tokens last minutes).
const TOKEN_SPARE_MS = 60_000;
// The socket closes with this code when the server refused the token: ask for a new one.
const CLOSE_TOKEN = 4401;
const TICKER_MAX = 4;

const root = document.getElementById("stream-page");
const streamId = Number(root.dataset.streamId);
const signedIn = root.dataset.authenticated === "1";
const loginUrl = root.dataset.loginUrl;

const els = {
  banner: document.getElementById("conn-banner"),
  pins: document.getElementById("pins"),
  status: document.getElementById("buy-status"),
  ticker: document.getElementById("ticker"),
  viewers: document.getElementById("viewers"),
  video: document.getElementById("video"),
  fallback: document.getElementById("player-fallback"),
  liveBadge: document.getElementById("live-badge"),
  statusBadge: document.getElementById("status-badge"),
  statusText: document.getElementById("player-status-text"),
  statusSub: document.getElementById("player-status-sub"),
  sheet: document.getElementById("checkout-sheet"),
  form: document.getElementById("checkout-form"),
  formError: document.getElementById("checkout-error"),
  formItem: document.getElementById("checkout-item"),
  addressFields: document.getElementById("checkout-address"),
  formSubmit: document.getElementById("checkout-submit"),
  bundles: document.getElementById("bundles"),
  venueHere: document.getElementById("venue-here"),
};

const state = {
  stream: JSON.parse(document.getElementById("stream-initial").textContent),
  pins: [],
  seq: 0,
  socketLive: false,
  everLive: false,
  lastPoll: "ok", // "ok" | "network" | "error"
  viewerToken: null,
  viewerTokenUntil: 0, // reused by reconnects until then (ms since the epoch)
  // On-site stock and smart bundles (docs/geofences.md): the venue the viewer is
  // inside (told by the geo panel's "cc:venue" event), each venue's stock of the pinned
  // SKUs ({venue id: {sku: n}}) and the bundles anchored on pinned SKUs.
  venue: null, // {id, name} while inside
  venueStock: {},
  bundles: [],
  // Deals this viewer may buy before they open (an early-access perk; docs/pricing.md,
  // "Early access"): {sku: deal}, so their pins show the price the buy charges.
  early: {},
  // The experiments this viewer is in (docs/experiments.md, "On the stream page"):
  // {slot: variant} from the snapshot, patched live by "experience" messages. {} = all standard.
  experience: {},
  // pin_order "personal": the snapshot's ranking of this viewer's pins (sku codes), or null.
  pinOrder: null,
};
state.pins = state.stream.pins;

const nodes = new Map(); // sku -> {li, ...parts}
const busy = new Set(); // skus with a buy in progress
const retrying = new Set(); // skus whose tap the server was too busy for, waiting to be tried again
const unsettledKeys = new Map(); // sku -> Idempotency-Key whose outcome we never learned
const unsettledCoupons = new Map(); // sku -> the coupon that key's request carried (a retry sends the same body)

// -- helpers ------------------------------------------------------------------------------

function idempotencyKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  // randomUUID needs a secure context; an edge node served over plain http on a LAN is not one.
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function pinBySku(sku) {
  return state.pins.find((p) => p.sku === sku);
}

function titleOf(sku) {
  const pin = pinBySku(sku);
  return pin ? pin.title : sku;
}

/** What a buyer here can get: the deal's own stock while a deal is open. */
function availableOf(pin) {
  if (pin.deal) return pin.deal.remaining;
  const early = state.early[pin.sku];
  return early ? early.units_left : pin.available;
}

function stockLabel(n) {
  if (n <= 0) return { text: "Sold out", tone: "out" };
  // The "3 left" urgency badge, unless an experiment turns it off for this viewer.
  if (n <= LOW_STOCK && variantOf("stock_urgency_badge") !== "off") return { text: `${n} left`, tone: "low" };
  return { text: `In stock: ${n}`, tone: "ok" };
}

function isOffline() {
  return !navigator.onLine || (!state.socketLive && state.lastPoll === "network");
}

// -- messages to the buyer --------------------------------------------------------------------

let statusTimer = null;
function announce(text, tone = "info", { link = null, sticky = false } = {}) {
  clearTimeout(statusTimer);
  els.status.replaceChildren();
  delete els.status.dataset.variant; // set again by a purchase confirmation (renderConfirmation)
  els.status.className = `buy-status toast ${tone}`;
  els.status.append(h("span", {}, text));
  if (link) els.status.append(" ", h("a", { href: link.href }, link.text));
  els.status.append(
    h("button", { type: "button", class: "icon-button", "aria-label": "Dismiss", onclick: clearStatus }, "×"),
  );
  if (!sticky) statusTimer = setTimeout(clearStatus, tone === "success" ? 6_000 : 12_000);
}

function clearStatus() {
  clearTimeout(statusTimer);
  els.status.replaceChildren();
  delete els.status.dataset.variant;
  els.status.className = "buy-status";
}

function updateBanner() {
  const banner = els.banner;
  let text = "";
  let tone = "";
  if (isOffline()) {
    text = "You are offline. Stock shown may be out of date; buying is paused until you're back online.";
    tone = "offline";
  } else if (!state.socketLive && state.everLive) {
    text = "Live updates interrupted — reconnecting… Stock refreshes every 3 seconds meanwhile.";
    tone = "reconnecting";
  } else if (!state.socketLive && state.lastPoll !== "ok") {
    text = "Can't reach the live feed — reconnecting…";
    tone = "reconnecting";
  }
  banner.hidden = !text;
  banner.dataset.state = tone || "live";
  banner.className = `conn-banner ${tone}`;
  if (banner.textContent !== text) banner.textContent = text;
  root.classList.toggle("is-offline", tone === "offline");
}

// -- rendering -------------------------------------------------------------------------------

function pinNode(pin) {
  const title = h("h3", { class: "pin__title" });
  const priceNow = h("span", { class: "price-now" });
  const shipping = h("span", { class: "muted small pin__shipping" });
  const priceWas = h("s", { class: "price-was", hidden: true });
  const dealRow = h("p", { class: "pin__deal", hidden: true });
  const dealTimer = h("span", { class: "deal-timer" });
  const dealLimit = h("span", { class: "deal-limit" });
  const dealTag = h("span", { class: "deal-tag" }, "Flash deal");
  dealRow.append(dealTag, h("span", { class: "deal-when" }, dealTimer, dealLimit));
  const stock = h("p", { class: "stock", "aria-live": "polite", "aria-atomic": "true" });
  const onSite = h("p", { class: "venue-stock", hidden: true, "aria-live": "polite", "aria-atomic": "true" });
  const art = h("div", { class: "pin__art", "aria-hidden": "true" });
  let action;
  if (signedIn) {
    action = h("button", { type: "button", class: "buy", onclick: () => buy(pin.sku) });
  } else {
    action = h("a", { class: "button buy", href: loginUrl });
  }
  const li = h(
    "li",
    { class: "pin", dataset: { sku: pin.sku } },
    art,
    h("div", { class: "pin__info" }, title, h("p", { class: "pin__price" }, priceNow, " ", priceWas, " ", shipping), dealRow, stock, onSite),
    action,
  );
  return { li, art, title, priceNow, priceWas, shipping, dealRow, dealTag, dealTimer, dealLimit, stock, onSite, action, image: null, label: null };
}

function updatePinNode(node, pin) {
  if (node.title.textContent !== pin.title) node.title.textContent = pin.title;
  if (node.image !== (pin.image_url || "")) {
    node.image = pin.image_url || "";
    node.art.replaceChildren(
      node.image
        ? h("img", { src: node.image, alt: "", loading: "lazy" })
        : h("span", {}, (pin.title || pin.sku).slice(0, 1).toUpperCase()),
    );
  }
  const early = pin.deal ? null : state.early[pin.sku] || null;
  const deal = pin.deal || early;
  node.priceNow.textContent = money(deal ? deal.price : pin.price, pin.currency);
  node.priceWas.hidden = !deal || Number(deal.price) >= Number(pin.price);
  node.priceWas.textContent = deal ? money(pin.price, pin.currency) : "";
  // A delivered order pays the shop's shipping fee once (none for a pickup at the venue).
  const fee = Number(state.stream?.shipping_fee || 0);
  node.shipping.textContent = fee > 0 && !state.venue ? `+ ${money(state.stream.shipping_fee, pin.currency)} shipping` : "";
  node.dealRow.hidden = !deal;
  node.li.classList.toggle("has-deal", Boolean(deal));
  node.li.classList.toggle("has-early-deal", Boolean(early));
  node.dealTag.textContent = early ? "Early access" : "Flash deal";
  if (early) {
    // Opens to everyone later: say when, no countdown to its end yet.
    delete node.dealTimer.dataset.endsAt;
    node.dealTimer.textContent = `Yours now · opens to everyone ${new Date(early.opens_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
    node.dealLimit.textContent = early.per_buyer_limit ? ` · limit ${early.per_buyer_limit} per buyer` : "";
  } else if (deal) {
    node.dealTimer.dataset.endsAt = deal.ends_at;
    node.dealLimit.textContent = deal.per_buyer_limit ? ` · limit ${deal.per_buyer_limit} per buyer` : "";
  } else {
    delete node.dealTimer.dataset.endsAt;
  }
  tickTimer(node.dealTimer);

  const left = availableOf(pin);
  const { text, tone } = stockLabel(left);
  if (left > 0 && left <= LOW_STOCK) expose("stock_urgency_badge"); // the badge, or its absence, shows
  if (node.stock.textContent !== text) node.stock.textContent = text;
  node.stock.className = `stock ${tone}`;
  node.li.classList.toggle("sold-out", left <= 0);
  const here = state.venue ? state.venueStock[state.venue.id]?.[pin.sku] : undefined;
  node.onSite.hidden = typeof here !== "number";
  const hereText = typeof here === "number" ? `At the venue: ${here} left` : "";
  if (node.onSite.textContent !== hereText) node.onSite.textContent = hereText;

  if (signedIn) {
    const button = node.action;
    if (button.classList.contains("bought")) return; // the confirmation finishes first
    button.disabled = left <= 0 || busy.has(pin.sku);
    const label = retrying.has(pin.sku) ? "Retrying…" : busy.has(pin.sku) ? "Buying…" : left <= 0 ? "Sold out" : "Buy";
    setButtonLabel(node, label, pin);
  } else {
    setButtonLabel(node, "Log in to buy", pin);
  }
}

function setButtonLabel(node, label, pin) {
  if (node.label === label) return;
  node.label = label;
  node.action.replaceChildren(label, h("span", { class: "visually-hidden" }, `: ${pin.title}`));
}

/** A deleted or cancelled drop (stream.deleted, stream.cancelled) sells nothing any more. */
function closedDrop() {
  return state.stream.status === "deleted" || state.stream.status === "cancelled";
}

function renderPins() {
  if (closedDrop()) {
    nodes.clear();
    els.pins.replaceChildren(h("li", { class: "pins-empty muted" }, "Nothing to buy here any more."));
    return;
  }
  const seen = new Set();
  state.pins.forEach((pin, index) => {
    let node = nodes.get(pin.sku);
    if (!node) {
      node = pinNode(pin);
      nodes.set(pin.sku, node);
    }
    seen.add(pin.sku);
    updatePinNode(node, pin);
    if (els.pins.children[index] !== node.li) els.pins.insertBefore(node.li, els.pins.children[index] || null);
  });
  for (const [sku, node] of nodes) {
    if (!seen.has(sku)) {
      node.li.remove();
      nodes.delete(sku);
    }
  }
  if (!state.pins.length) {
    if (!els.pins.querySelector(".pins-empty"))
      els.pins.append(h("li", { class: "pins-empty muted" }, "No products pinned yet — stay tuned."));
  } else {
    els.pins.querySelector(".pins-empty")?.remove();
  }
}

function renderPin(sku) {
  const pin = pinBySku(sku);
  const node = nodes.get(sku);
  if (pin && node) updatePinNode(node, pin);
}

function tickTimer(el) {
  const endsAt = el.dataset.endsAt;
  if (!endsAt) return;
  const left = countdown(endsAt);
  el.textContent = left ? `Ends in ${left}` : "Ending now";
}

function renderStatus() {
  const status = state.stream.status;
  els.liveBadge.hidden = status !== "live";
  els.statusBadge.hidden = status === "live";
  els.statusBadge.textContent = status === "scheduled" ? "UPCOMING" : status.toUpperCase();
  if (status === "deleted") {
    // The creator removed the stream (stream.deleted): nothing here can be bought any more.
    els.statusText.textContent = "This stream was removed";
    els.statusSub.textContent = "The creator took it down.";
    els.viewers.hidden = true;
    renderPins();
  } else if (status === "cancelled") {
    // The creator cancelled the drop before it went live (stream.cancelled).
    els.statusText.textContent = "This drop was cancelled";
    els.statusSub.textContent = "The creator cancelled it; it will not go live.";
    els.viewers.hidden = true;
    renderPins();
  } else if (status === "ended") {
    els.statusText.textContent = "This stream has ended";
    els.statusSub.textContent = "Thanks for watching.";
    els.viewers.hidden = true;
  } else if (status === "live") {
    els.statusText.textContent = `${state.stream.creator} is live`;
    els.statusSub.textContent = "Video plays in browsers with HLS support — shop along below.";
  }
  setupVideo();
}

/** Native HLS only (Safari, iOS, some Android): no player library is shipped. */
function setupVideo() {
  const { hls_url: hls, status } = state.stream;
  const canPlay = hls && els.video.canPlayType("application/vnd.apple.mpegurl");
  if (!canPlay || status !== "live" || !state.viewerToken) {
    if (status !== "live" && !els.video.hidden) {
      els.video.pause();
      els.video.hidden = true;
      els.fallback.hidden = false;
    }
    return;
  }
  if (els.video.dataset.src === hls) return;
  const url = new URL(hls, window.location.href);
  // The media server lets a viewer read with their viewer token (MediaMTX auth hook).
  if (!url.searchParams.has("token")) url.searchParams.set("token", state.viewerToken);
  els.video.dataset.src = hls;
  els.video.src = url.toString();
  els.video.hidden = false;
  els.fallback.hidden = true;
}

function setViewers(n) {
  els.viewers.hidden = state.stream.status === "ended" || closedDrop();
  els.viewers.textContent = `${n} watching`;
}

// -- badge pops (docs/loyalty.md, "On-screen recognition") ------------------------------------
//
// A badge won during the stream shows as a small card in the player's top-right corner:
// over the video only, never over the shelf and its buy buttons, never taking clicks
// (pointer-events: none), read out politely, gone after a few seconds. With reduced motion
// it appears and goes without animating. At most BADGE_POPS_MAX at once; older ones go first.

const BADGE_POPS_MAX = 3;
const BADGE_POP_MS = 5_000;
let badgePops = null;

function popBadge(badge, name) {
  if (variantOf("badge_pops") === "off") {
    expose("badge_pops"); // rendered as "no pop"
    return;
  }
  expose("badge_pops");
  if (!badgePops) {
    badgePops = h("ul", { class: "badge-pops", id: "badge-pops", "aria-live": "polite", "aria-label": "Badges won" });
    document.getElementById("player").append(badgePops);
  }
  const item = h(
    "li",
    { class: reducedMotion() ? "badge-pop" : "badge-pop enter" },
    h("span", { class: "badge-pop__icon", "aria-hidden": "true" }, badge.icon || "★"),
    h("span", { class: "badge-pop__text" }, `${name || "Someone"} earned `, h("strong", {}, badge.name || "a badge")),
  );
  badgePops.prepend(item);
  while (badgePops.children.length > BADGE_POPS_MAX) badgePops.lastElementChild.remove();
  setTimeout(() => item.remove(), BADGE_POP_MS);
}

function addTicker(text) {
  expose("social_proof_ticker");
  const item = h("li", { class: reducedMotion() ? "" : "enter" }, text);
  els.ticker.prepend(item);
  while (els.ticker.children.length > TICKER_MAX) els.ticker.lastElementChild.remove();
  setTimeout(() => item.classList.add("old"), 8_000);
}

// -- state changes ----------------------------------------------------------------------------

function applyStream(body) {
  state.stream = body;
  state.pins = personalOrder(body.pins);
  renderPins();
  renderStatus();
  // For the reminder panel (static/js/reminders.js): a drop no longer scheduled takes none.
  document.dispatchEvent(new CustomEvent("cc:stream", { detail: { status: body.status } }));
}

function handle(message) {
  switch (message.type) {
    case "snapshot":
      state.seq = message.seq || 0;
      state.pinOrder = Array.isArray(message.pin_order) ? message.pin_order : null;
      applyStream({ ...message.stream, pins: message.pins });
      for (const [sku, available] of Object.entries(message.stock || {})) {
        const pin = pinBySku(sku);
        if (pin) pin.available = available;
      }
      state.venueStock = {};
      for (const [id, venue] of Object.entries(message.venues || {})) state.venueStock[id] = { ...venue.stock };
      state.bundles = message.bundles || [];
      applyExperience(message.experience || {}, { replace: true });
      state.pins = personalOrder(state.pins); // now that the experience is known
      renderPins();
      renderBundles();
      if (typeof message.viewers === "number") setViewers(message.viewers);
      break;
    case "experience":
      // An experiment paused, stopped or rolled back: a patch of the slots it names.
      applyExperience(message.experience || {}, { replace: false });
      break;
    case "stock":
      if (typeof message.seq === "number") {
        if (message.seq <= state.seq) return; // older than what the page shows
        state.seq = message.seq;
      }
      if (message.venue != null) {
        // A venue's own stock rows (docs/geofences.md): "At the venue: N left".
        const stock = (state.venueStock[message.venue] ||= {});
        Object.assign(stock, message.stock || {});
        renderPins();
        renderBundles();
        break;
      }
      for (const [sku, available] of Object.entries(message.stock || {})) {
        const pin = pinBySku(sku);
        if (!pin) continue;
        pin.available = available;
        renderPin(sku);
      }
      break;
    case "deal": {
      const pin = pinBySku(message.sku);
      if (!pin) return;
      pin.deal = message.deal;
      renderPin(message.sku);
      break;
    }
    case "price": {
      const pin = pinBySku(message.sku);
      if (!pin) return;
      pin.price = message.price;
      if (message.currency) pin.currency = message.currency;
      renderPin(message.sku);
      break;
    }
    case "pin":
      state.stream.pins = message.pins; // the creator's order
      state.pins = personalOrder(message.pins);
      renderPins();
      renderBundles();
      break;
    case "bundle":
      // A bundle saved, re-priced (a price-tracking webhook) or removed.
      state.bundles = state.bundles.filter((b) => b.bundle !== message.id);
      if (message.bundle) state.bundles.push(message.bundle);
      state.bundles.sort((a, b) => a.bundle - b.bundle);
      renderBundles();
      break;
    case "interaction":
      if (message.kind === "purchase") {
        addTicker(`${message.name || "Someone"} bought ${message.quantity || 1} × ${titleOf(message.sku)}`);
      } else if (message.kind === "badge" && message.badge) {
        popBadge(message.badge, message.name);
        earlySoon(); // a badge may bring early access: ask again what is open to me
      } else if (message.text) {
        addTicker(message.text);
      }
      break;
    case "presence":
      setViewers(message.viewers);
      break;
    case "stream":
      state.stream.status = message.status;
      renderStatus();
      renderBundles();
      break;
    case "pong":
      break;
    default:
      if (message.type === "error") console.warn("stream socket:", message.code, message.message);
  }
}

// -- on-site stock and smart bundles (docs/geofences.md) ----------------------------------

/** Whether a bundle is on offer now: always-bundles whose anchor is pinned; low-stock ones
 *  while the anchor's stock at their venue is at or below the threshold. */
function bundleOffered(bundle) {
  if (closedDrop() || !pinBySku(bundle.anchor)) return false;
  if (bundle.trigger !== "low_stock") return true;
  // A venue running low is news for the viewers there (docs/geofences.md, "On the
  // storefront"): the card shows only while the geo panel says the viewer is inside it.
  if (!state.venue || Number(state.venue.id) !== bundle.venue) return false;
  const onSite = state.venueStock[bundle.venue]?.[bundle.anchor];
  return typeof onSite === "number" && onSite <= bundle.threshold;
}

const bundleNodes = new Map(); // bundle id -> {li, text, button}

function renderBundles() {
  const offered = state.bundles.filter(bundleOffered);
  const seen = new Set();
  for (const bundle of offered) {
    seen.add(bundle.bundle);
    let node = bundleNodes.get(bundle.bundle);
    if (!node) {
      const text = h("p", {});
      const button = signedIn
        ? h("button", { type: "button", class: "buy", onclick: () => buyBundle(bundle.bundle) }, "Buy bundle")
        : h("a", { class: "button buy", href: loginUrl }, "Log in to buy");
      node = { li: h("li", { class: "bundle-card", dataset: { bundle: String(bundle.bundle) } }, text, button), text, button };
      bundleNodes.set(bundle.bundle, node);
    }
    const titles = (bundle.titles || bundle.skus).join(" + ");
    const hook = bundle.trigger === "low_stock" ? "Running low — get it in a bundle: " : "Better together: ";
    const saving = Number(bundle.saving) > 0 ? `, save ${money(bundle.saving, bundle.currency)}` : "";
    const line = `${titles} for ${money(bundle.price, bundle.currency)}${saving}`;
    if (node.text.textContent !== hook + line) {
      node.text.replaceChildren(h("span", { class: "bundle-hook" }, hook), line);
    }
    if (node.li.parentElement !== els.bundles) els.bundles.append(node.li);
  }
  for (const [id, node] of bundleNodes) {
    if (!seen.has(id)) {
      node.li.remove();
      bundleNodes.delete(id);
    }
  }
  els.bundles.hidden = offered.length === 0;
}

function renderVenue() {
  els.venueHere.hidden = !state.venue;
  els.venueHere.textContent = state.venue ? `You're at ${state.venue.name || "the venue"}: pick up here.` : "";
  renderPins();
  renderBundles();
}

// The geo panel tells the page where the viewer is:
// document.dispatchEvent(new CustomEvent("cc:venue", {detail: {venue, state, name}})).
document.addEventListener("cc:venue", (event) => {
  const { venue, state: where, name } = event.detail || {};
  if (where === "inside" && venue != null) {
    state.venue = { id: String(venue), name };
  } else if (!state.venue || state.venue.id === String(venue)) {
    state.venue = null;
  }
  renderVenue();
});

const bundleBusy = new Set();

async function buyBundle(id) {
  const node = bundleNodes.get(id);
  if (!node || bundleBusy.has(id)) return;
  if (isOffline()) {
    announce("You're offline — your order was not sent.", "error");
    return;
  }
  bundleBusy.add(id);
  node.button.disabled = true;
  node.button.textContent = "Buying…";
  // One tap, all or nothing: the bundle's lines are taken together or not at all. Inside a
  // venue, picked up there (from its own stock).
  const body = { bundle: id, stream: streamId };
  if (state.venue) Object.assign(body, { fulfilment: "pickup", venue: Number(state.venue.id) });
  // Refused for being busy (nothing done under the key): again, same key and body, a few times.
  const key = idempotencyKey();
  const result = await apiRetrying(
    "/api/v1/orders/",
    { method: "POST", body, headers: { "Idempotency-Key": key } },
    { onBusy: () => announce("Busy — retrying…", "info", { sticky: true }) },
  );
  bundleBusy.delete(id);
  node.button.disabled = false;
  node.button.textContent = "Buy bundle";
  const code = result.data?.code;
  if (result.status === 201) {
    const order = result.data;
    const saved = savedNote(order);
    const total = money(order.total, order.currency);
    announce(`${orderHeadline(order)} — bundle, ${total}${saved}.${offlineNote(order)}`, "success", {
      link: { href: `/orders/${order.id}/`, text: "Order & receipt" },
    });
    renderConfirmation();
  } else if (result.network) {
    announce("The connection dropped before we heard back. Check your orders before trying again.", "error");
  } else if (code === "checkout_incomplete") {
    announce("Save a card and an address first: tap Buy on a product once.", "error");
  } else if (code === "bundle_not_available") {
    announce("This bundle isn't on offer any more. Nothing was charged.", "error");
  } else if (BUY_ERRORS[code]) {
    announce(BUY_ERRORS[code], "error");
  } else {
    announce(result.data?.message || `Something went wrong (HTTP ${result.status}). Nothing was charged.`, "error");
  }
}

// -- realtime, with polling while the socket is down -----------------------------------------------

let pollTimer = null;
let pollWait = POLL_EVERY_MS;

/** Read the stream once; true when the server answered it. */
async function poll() {
  const result = await api(`/api/v1/streams/${streamId}/`);
  if (state.socketLive) return true; // the socket came back meanwhile: its snapshot is newer
  if (result.ok && result.data) {
    state.lastPoll = "ok";
    applyStream(result.data);
    // The server answers: the socket may well too (after a restart, say).
    socket.reconnectSoon();
  } else {
    state.lastPoll = result.network ? "network" : "error";
  }
  updateBanner();
  return Boolean(result.ok);
}

async function pollAgain() {
  const started = Date.now();
  const answered = await poll();
  if (!pollTimer) return; // stopped meanwhile
  const took = Date.now() - started;
  pollWait = answered ? Math.max(POLL_EVERY_MS, 10 * took) : pollWait * 2;
  pollWait = Math.min(POLL_MAX_MS, pollWait);
  pollTimer = setTimeout(pollAgain, pollWait);
}

function startPolling() {
  if (pollTimer) return;
  const [low, high] = POLL_FIRST_MS;
  pollWait = POLL_EVERY_MS;
  pollTimer = setTimeout(pollAgain, low + Math.random() * (high - low));
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

const socket = new LiveSocket({
  async connectUrl() {
    // Viewer tokens are short-lived: a new one when there is none, or it is about to expire
    // or was refused; otherwise a reconnect reuses it (after a restart every page reconnects
    // at once, and each asking for a token first doubled the work).
    if (!state.viewerToken || Date.now() > state.viewerTokenUntil) {
      const result = await api(`/api/v1/streams/${streamId}/viewer-token`, { method: "POST" });
      if (!result.ok || !result.data?.token) {
        if (result.network) state.lastPoll = "network";
        return null;
      }
      state.viewerToken = result.data.token;
      state.viewerTokenUntil = Date.parse(result.data.expires_at) - TOKEN_SPARE_MS;
      setupVideo();
    }
    return wsUrl(`/ws/streams/${streamId}/?token=${encodeURIComponent(state.viewerToken)}`);
  },
  onMessage: handle,
  onClose(code) {
    if (code === CLOSE_TOKEN) state.viewerTokenUntil = 0;
  },
  onState(live) {
    state.socketLive = live === "live";
    if (state.socketLive) {
      state.everLive = true;
      state.lastPoll = "ok";
      stopPolling();
    } else {
      startPolling();
    }
    root.dataset.realtime = state.socketLive ? "socket" : "polling";
    updateBanner();
  },
});

window.addEventListener("online", () => {
  updateBanner();
  if (!state.socketLive) poll();
});
window.addEventListener("offline", updateBanner);

// -- buying ---------------------------------------------------------------------------------------

const BUY_ERRORS = {
  sold_out: "Sold out — someone was faster. Nothing was charged.",
  buyer_limit_exceeded: "You've reached the per-buyer limit for this item.",
  deal_not_open: "This flash deal isn't open any more. Nothing was charged.",
  payment_declined: "Your payment was declined. Your card was not charged.",
  idempotency_key_in_flight: "Your previous tap is still being processed — one moment.",
  payment_gateway_unavailable: "Payments are unavailable right now. Nothing was charged; please try again.",
  reservation_expired: "That took too long and your reservation expired. Nothing was charged; please try again.",
  rate_limited: "Too many taps — wait a moment and try again.",
  overloaded: "Still too busy — your order wasn't placed and nothing was charged. Tap Buy to try again.",
  coupon_used: "Your coupon was used already. Nothing was charged — tap Buy again for the price without it.",
  coupon_expired: "Your coupon has expired. Nothing was charged — tap Buy again for the price without it.",
  coupon_cap_reached: "This offer's coupons have all been redeemed. Nothing was charged — tap Buy again.",
  coupon_not_applicable: "Your coupon doesn't apply to this item. Nothing was charged — tap Buy again.",
};

// -- when the server is busy -----------------------------------------------------------------------
//
// In a stampede the server refuses at once what it cannot answer in time (503 overloaded),
// and a buyer over their own limit gets 429 rate_limited: both say Retry-After, and nothing
// was done under the Idempotency-Key. The tap is tried again with the SAME key, so no retry
// can ever buy twice: after Retry-After plus a random wait that doubles each time, at most
// six times in all (static/js/retry.js), and for a deal only while it is still open
// (docs/overload.md, "The storefront retries").

function nodeButton(sku) {
  const node = nodes.get(sku);
  return node && signedIn ? node.action : null;
}

function setBusy(sku, on) {
  if (on) busy.add(sku);
  else busy.delete(sku);
  renderPin(sku);
}

async function buy(sku) {
  const pin = pinBySku(sku);
  if (!pin || busy.has(sku)) return;
  if (isOffline()) {
    announce("You're offline — your order was not sent.", "error");
    return;
  }
  // A key whose outcome we never heard (the connection broke mid-request) is reused: a
  // retry then answers the first attempt's result instead of buying twice.
  const unsettled = unsettledKeys.has(sku);
  const key = unsettledKeys.get(sku) || idempotencyKey();
  if (!unsettled) unsettledCoupons.set(sku, window.ccGeo?.couponFor?.(sku) ?? null);
  unsettledKeys.set(sku, key);
  setBusy(sku, true);
  await attemptBuy(pin, key, { unsettled });
}

async function attemptBuy(pin, key, { afterCheckout = false, unsettled = false } = {}) {
  const { sku } = pin;
  // The stream names the shop (docs/buying.md, "Naming the shop"): another shop using the
  // same SKU code can never make this buy ambiguous or buy from the wrong shop.
  const body = { sku, quantity: 1, stream: streamId };
  // A running-time coupon from a pop-up (static/js/geo.js; docs/geofences.md) that covers
  // this SKU: the server values it at the moment of the buy.
  const coupon = unsettledCoupons.get(sku);
  if (coupon) body.coupon = coupon;
  // Inside a venue that has the item on its shelf: picked up there, from its own stock
  // (docs/geofences.md). Not a flash deal's units: they are set aside elsewhere and ship.
  if (state.venue && !pin.deal && state.venueStock[state.venue.id]?.[sku] > 0) {
    Object.assign(body, { fulfilment: "pickup", venue: Number(state.venue.id) });
  }
  const dealId = pin.deal?.id ?? null;
  // A deal's buy is retried only while that deal is still open when the wait is over.
  const dealOpen = (wait) => {
    const now = pinBySku(sku);
    return !dealId || (now?.deal?.id === dealId && Date.now() + wait < Date.parse(now.deal.ends_at));
  };
  const headers = { "Idempotency-Key": key };
  // A key whose first answer never came may have bought the last unit: the server must look
  // it up rather than answer "sold out" from memory (docs/buying.md, "Sold out from memory").
  if (unsettled) headers["Cache-Control"] = "no-cache";
  // Refused before anything was done: tried again with the same key and body.
  const result = await apiRetrying("/api/v1/orders/", { method: "POST", body, headers }, {
    onBusy({ wait }) {
      if (!pinBySku(sku) || !dealOpen(wait)) return false;
      retrying.add(sku);
      renderPin(sku);
      announce("Busy — retrying…", "info", { sticky: true });
      return true;
    },
  });
  pin = pinBySku(sku) || pin; // as it is now (a deal may have opened or closed meanwhile)
  const code = result.data?.code;

  if (busyAnswer(result)) {
    retrying.delete(sku);
    unsettledKeys.delete(sku); // nothing was done under it: the next tap is a new purchase
    unsettledCoupons.delete(sku);
    setBusy(sku, false);
    announce(
      dealOpen(0)
        ? "Still too busy — your order wasn't placed and nothing was charged. Tap Buy to try again."
        : "The deal ended before we got through. Nothing was charged.",
      "error",
    );
    return;
  }
  if (retrying.delete(sku)) renderPin(sku);

  if (result.network) {
    setBusy(sku, false);
    announce(
      isOffline()
        ? "You're offline — we couldn't confirm your order. Tap Buy again once you're back: you won't be charged twice."
        : "The connection dropped before we heard back. Tap Buy again: you won't be charged twice.",
      "error",
    );
    updateBanner();
    return;
  }
  if (code !== "idempotency_key_in_flight") {
    unsettledKeys.delete(sku);
    unsettledCoupons.delete(sku);
  }
  // The coupons changed (one used, or refused): the pop-up panel re-reads them.
  if (coupon && (result.status === 201 || code?.startsWith("coupon_"))) document.dispatchEvent(new CustomEvent("cc:order"));

  if (result.status === 201) {
    setBusy(sku, false);
    confirmBuy(sku, result.data);
    return;
  }
  if (result.status === 409 && code === "checkout_incomplete") {
    if (afterCheckout && result.headers.get("Idempotent-Replayed") === "true") {
      // The API answers a repeated key with its first answer, and that first answer was
      // "checkout incomplete" (nothing was ordered under it): buy under a new key.
      await attemptBuy(pin, idempotencyKey(), { afterCheckout: true });
      return;
    }
    if (!afterCheckout) {
      openCheckout(pin, key);
      return;
    }
  }
  if (result.status === 402 && code === "payment_declined" && !afterCheckout) {
    // The saved card was declined: without a way to give another one, every later tap
    // would be declined again. Ask for a card only; the address stays as saved. The
    // declined buy is settled, so the retry is a new purchase under a new key.
    openCheckout(pin, idempotencyKey(), { cardOnly: true });
    return;
  }
  setBusy(sku, false);
  if (result.status === 401) {
    announce("Log in to buy.", "error", { link: { href: loginUrl, text: "Log in" } });
  } else if (result.status === 403) {
    announce("This buy wasn't allowed — your session may have expired. Reload the page and try again.", "error", {
      link: { href: loginUrl, text: "Log in again" },
    });
  } else if (BUY_ERRORS[code]) {
    let text = BUY_ERRORS[code];
    if (code === "buyer_limit_exceeded" && pin.deal?.per_buyer_limit) {
      text = `You've reached the limit of ${pin.deal.per_buyer_limit} per buyer for this deal.`;
    }
    announce(text, "error");
  } else {
    announce(result.data?.message || `Something went wrong (HTTP ${result.status}). Nothing was charged.`, "error");
  }
}

// "(you saved 2.00 USD, free shipping)", "(incl. 4.90 USD shipping)": what the order's
// discount and shipping were (docs/pricing.md, "Shipping").
function savedNote(order) {
  if (!order) return "";
  const notes = [];
  if (Number(order.discount) > 0) notes.push(`you saved ${money(order.discount, order.currency)}`);
  const shipping = order.shipping;
  if (shipping && Number(shipping.fee) > 0) {
    notes.push(Number(shipping.total) > 0 ? `incl. ${money(shipping.total, order.currency)} shipping` : "free shipping");
  }
  return notes.length ? ` (${notes.join(", ")})` : "";
}

// "Order #12 confirmed", or, for a buy an edge node accepted while the payment provider
// could not be reached, "Order #12 accepted offline" (docs/buying.md, "Offline selling").
function orderHeadline(order) {
  return `Order #${order?.id ?? ""} ${order?.status === "accepted_offline" ? "accepted offline" : "confirmed"}`;
}

function offlineNote(order) {
  return order?.status === "accepted_offline"
    ? " Your receipt is signed; capture is pending — your card is charged when the payment provider is back."
    : "";
}

function confirmBuy(sku, order) {
  if (state.early[sku]) loadEarlyDeals(); // the perk is used now: back to what everyone sees
  const node = nodes.get(sku);
  const pin = pinBySku(sku);
  const total = order?.total ? money(order.total, order.currency) : "";
  const saved = savedNote(order);
  announce(
    `${orderHeadline(order)} — ${pin ? pin.title : sku}${total ? `, ${total}` : ""}${saved}.${offlineNote(order)}`,
    "success",
    order?.id ? { link: { href: `/orders/${order.id}/`, text: "Order & receipt" } } : {},
  );
  renderConfirmation();
  if (!node || !signedIn) return;
  const button = node.action;
  button.classList.add("bought");
  button.disabled = true;
  node.label = "Bought";
  button.replaceChildren(h("span", { class: "check", "aria-hidden": "true" }, "✓"), " Bought");
  if (!reducedMotion()) {
    node.li.classList.remove("celebrate");
    void node.li.offsetWidth; // restart the animation
    node.li.classList.add("celebrate");
  }
  setTimeout(() => {
    button.classList.remove("bought");
    node.li.classList.remove("celebrate");
    node.label = null;
    renderPin(sku);
  }, 2_500);
}

// -- experiments on micro-interactions (docs/experiments.md, "On the stream page") -----------
//
// The snapshot's "experience" says which variant of each experimented slot this viewer
// gets; "experience" messages patch it live (a pause, stop or rollback: back to the
// standard, no reload). After a variant is rendered the page reports one exposure per slot
// and variant; script errors are reported too, naming the slots it has exposed. Both go out
// in batches to POST /api/v1/client-events/. With no experiment running (experience {})
// nothing renders differently and nothing is posted.

const EVENTS_FLUSH_MS = 2_000;
const EVENTS_BATCH_MAX = 100; // the API's bound per batch
const ERRORS_MAX = 10; // error events a page reports in its lifetime
const CONFETTI_MS = 1_600;

const exposed = new Map(); // slot -> the variant reported as rendered
const ended = new Set(); // slots an "experience" message ended: no exposures until the next snapshot
let outbox = [];
let flushTimer = null;
let errorsReported = 0;

/** ``pins`` (the creator's order) in this viewer's personal order, when the pin_order
 *  experiment gives them one; pins the ranking does not name keep the creator's order, after. */
function personalOrder(pins) {
  if (!state.pinOrder || variantOf("pin_order") !== "personal") return pins;
  const rank = new Map(state.pinOrder.map((sku, i) => [sku, i]));
  const last = state.pinOrder.length;
  return pins
    .map((pin, i) => [rank.get(pin.sku) ?? last + i, pin])
    .sort((a, b) => a[0] - b[0])
    .map(([, pin]) => pin);
}

function variantOf(slot) {
  return state.experience[slot] || "control";
}

function applyExperience(experience, { replace }) {
  const before = JSON.stringify(state.experience);
  if (replace) {
    state.experience = { ...experience };
    ended.clear();
  } else {
    Object.assign(state.experience, experience);
    for (const slot of Object.keys(experience)) ended.add(slot);
  }
  if (JSON.stringify(state.experience) === before) return;
  renderExperience();
}

function renderExperience() {
  root.dataset.purchaseConfirmation = variantOf("purchase_confirmation");
  if (variantOf("pin_order") !== "personal" && state.pinOrder) {
    // Back to the creator's order (the experiment ended): the stream's own order of the pins.
    state.pinOrder = null;
    const position = new Map(state.stream.pins.map((p, i) => [p.sku, i]));
    state.pins = [...state.pins].sort((a, b) => (position.get(a.sku) ?? 0) - (position.get(b.sku) ?? 0));
  }
  if (state.experience.pin_order && state.pins.length) expose("pin_order");
  els.ticker.hidden = variantOf("social_proof_ticker") === "off";
  renderPins(); // the stock urgency badge (exposed there, once a product is low)
}

/** After a buy: the standard confirmation (the toast and the "Bought" button), plus the
 *  variant's own touch. control, toast and none render exactly the standard. */
function renderConfirmation() {
  const variant = variantOf("purchase_confirmation");
  els.status.dataset.variant = variant;
  if (variant === "confetti") confetti();
  expose("purchase_confirmation");
}

function confetti() {
  const canvas = h("canvas", { class: "confetti", "aria-hidden": "true", width: 320, height: 160 });
  els.status.prepend(canvas);
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const colors = ["#f59e0b", "#10b981", "#3b82f6", "#ef4444", "#a855f7"];
  const bits = Array.from({ length: 48 }, (_, i) => ({
    x: 160,
    y: 150,
    vx: (Math.random() - 0.5) * 6,
    vy: -3 - Math.random() * 5,
    size: 3 + Math.random() * 4,
    color: colors[i % colors.length],
  }));
  const draw = (t) => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    for (const b of bits) {
      ctx.fillStyle = b.color;
      ctx.globalAlpha = Math.max(0, 1 - t);
      ctx.fillRect(b.x + b.vx * t * 30, b.y + b.vy * t * 30 + 60 * t * t, b.size, b.size);
    }
  };
  if (reducedMotion()) {
    draw(0.5); // one still frame, no motion
  } else {
    const start = performance.now();
    const step = (now) => {
      const t = (now - start) / CONFETTI_MS;
      if (t >= 1 || !canvas.isConnected) return;
      draw(t);
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }
  setTimeout(() => canvas.remove(), CONFETTI_MS * 2);
}

/** Report that ``slot``'s variant was rendered, once per slot and variant. */
function expose(slot) {
  const variant = state.experience[slot];
  if (!variant || ended.has(slot) || exposed.get(slot) === variant) return;
  exposed.set(slot, variant);
  queueEvent({ kind: "exposure", stream: streamId, slot, variant });
}

function reportError(message) {
  if (!Object.keys(state.experience).length || errorsReported >= ERRORS_MAX) return;
  const text = String(message || "error").slice(0, 500) || "error";
  const slots = [...exposed].filter(([slot, variant]) => state.experience[slot] === variant && !ended.has(slot));
  const events = slots.length
    ? slots.map(([slot, variant]) => ({ kind: "error", stream: streamId, slot, variant, message: text }))
    : [{ kind: "error", stream: streamId, message: text }];
  for (const event of events) {
    if (errorsReported >= ERRORS_MAX) break;
    errorsReported += 1;
    queueEvent(event);
  }
}

function queueEvent(event) {
  if (outbox.length >= EVENTS_BATCH_MAX) return;
  outbox.push(event);
  if (!flushTimer) flushTimer = setTimeout(flushEvents, EVENTS_FLUSH_MS);
}

async function flushEvents() {
  flushTimer = null;
  const events = outbox;
  outbox = [];
  if (!events.length) return;
  const result = await api("/api/v1/client-events/", { method: "POST", body: { events } });
  if (result.network || result.status === 429) {
    // Not heard: try once more with the next batch (bounded by EVENTS_BATCH_MAX).
    outbox = [...events, ...outbox].slice(0, EVENTS_BATCH_MAX);
    if (!flushTimer) flushTimer = setTimeout(flushEvents, EVENTS_FLUSH_MS * 3);
  }
}

window.addEventListener("error", (event) => reportError(event.message || event.error?.message));
window.addEventListener("unhandledrejection", (event) => reportError(`Unhandled rejection: ${event.reason?.message || event.reason}`));
window.addEventListener("pagehide", () => {
  if (outbox.length) flushEvents();
});

// -- express checkout (first buy) ------------------------------------------------------------

let checkout = null; // {pin, key, savedCard}

function openCheckout(pin, key, { cardOnly = false } = {}) {
  checkout = { pin, key, cardOnly, savedCard: cardOnly ? false : checkout?.savedCard || false };
  els.formItem.textContent = `Then we buy 1 × ${pin.title}.`;
  els.formError.textContent = cardOnly ? "Your card was declined and not charged. Try another card." : "";
  els.addressFields.hidden = cardOnly;
  els.addressFields.disabled = cardOnly; // disabled fields are neither required nor sent
  if (cardOnly) els.form.elements.namedItem("token").value = "";
  els.form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  if (typeof els.sheet.showModal === "function") els.sheet.showModal();
  else els.sheet.setAttribute("open", "");
  const firstEmpty = [...els.form.querySelectorAll("input[required]:enabled")].find((el) => !el.value.trim());
  (firstEmpty || els.formSubmit).focus();
}

function closeCheckout() {
  if (els.sheet.open) els.sheet.close();
}

els.sheet.addEventListener("close", () => {
  if (!checkout) return;
  const { pin } = checkout;
  checkout = null;
  if (busy.has(pin.sku)) {
    setBusy(pin.sku, false);
    announce("Checkout cancelled — nothing was ordered.", "info");
  }
});
els.form.querySelectorAll("[data-close]").forEach((b) => b.addEventListener("click", closeCheckout));

function fieldError(errors) {
  if (!errors) return "";
  return Object.entries(errors)
    .map(([field, list]) => {
      const input = els.form.elements.namedItem(field);
      if (input) input.setAttribute("aria-invalid", "true");
      const label = input ? els.form.querySelector(`label[for="${input.id}"]`)?.firstChild?.textContent.trim() : field;
      return `${label || field}: ${(list || []).map((e) => e.message).join(" ")}`;
    })
    .join(" ");
}

els.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!checkout) return;
  els.formError.textContent = "";
  els.form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  const data = Object.fromEntries(new FormData(els.form).entries());
  for (const key of Object.keys(data)) data[key] = data[key].trim();
  const missing = [...els.form.querySelectorAll("input[required]:enabled")].filter((el) => !el.value.trim());
  if (missing.length) {
    missing.forEach((el) => el.setAttribute("aria-invalid", "true"));
    els.formError.textContent = "Please fill in the highlighted fields.";
    missing[0].focus();
    return;
  }
  if (!checkout.cardOnly && !/^[A-Za-z]{2}$/.test(data.country)) {
    els.form.elements.namedItem("country").setAttribute("aria-invalid", "true");
    els.formError.textContent = "Country: use a two-letter code such as DE or US.";
    return;
  }
  if (isOffline()) {
    els.formError.textContent = "You're offline — nothing was saved or ordered.";
    return;
  }
  els.formSubmit.disabled = true;
  els.formSubmit.textContent = "Saving…";
  try {
    if (!checkout.savedCard) {
      const card = await api("/api/v1/me/payment-methods/", { method: "POST", body: { token: data.token } });
      if (!card.ok) {
        els.formError.textContent =
          fieldError(card.data?.errors) || card.data?.message || "We couldn't save this card.";
        return;
      }
      checkout.savedCard = true;
    }
    if (!checkout.cardOnly) {
      const { token, ...address } = data;
      const saved = await api("/api/v1/me/address/", { method: "PUT", body: address });
      if (!saved.ok) {
        els.formError.textContent =
          fieldError(saved.data?.errors) || saved.data?.message || "We couldn't save this address.";
        return;
      }
    }
    const { pin, key } = checkout;
    checkout = null; // the sheet's close handler must not cancel the buy
    closeCheckout();
    // The same Idempotency-Key as the first tap: it is still the same purchase.
    await attemptBuy(pin, key, { afterCheckout: true });
  } finally {
    els.formSubmit.disabled = false;
    els.formSubmit.textContent = "Save and buy";
  }
});

// -- early access ---------------------------------------------------------------------------------

const EARLY_EVERY_MS = 60_000;
let earlyTimer = null;

// Once per burst of badge pops (a drop's opening awards many at once), a few seconds late:
// the award's perk is granted by the same handler that sent the pop.
function earlySoon() {
  if (!signedIn || earlyTimer) return;
  earlyTimer = setTimeout(() => {
    earlyTimer = null;
    loadEarlyDeals();
  }, 2_000 + Math.random() * 3_000);
}

async function loadEarlyDeals() {
  if (!signedIn || !["scheduled", "live"].includes(state.stream.status)) return;
  const result = await api(`/api/v1/streams/${streamId}/early-deals/`);
  if (!result.ok || !Array.isArray(result.data)) return;
  state.early = Object.fromEntries(result.data.map((deal) => [deal.sku, deal]));
  renderPins();
}

// -- go -----------------------------------------------------------------------------------------

renderPins();
renderStatus();
loadEarlyDeals();
if (signedIn) setInterval(loadEarlyDeals, EARLY_EVERY_MS);
setInterval(() => document.querySelectorAll(".deal-timer").forEach(tickTimer), 1_000);
socket.start();
