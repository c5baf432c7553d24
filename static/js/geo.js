// The pop-up panel of the stream page (docs/geofences.md, "On the storefront"): location
// consent, pings (the browser's position, or in demo mode a simulated one), the venues the
// viewer is at, their running-time coupons and announcements. The rest of the page learns
// where the viewer is from a "cc:venue" DOM event ({venue, state, name}) and which coupon
// a buy may carry from window.ccGeo.couponFor(sku).
import { api, countdown, h, money } from "./live.js";

const PING_EVERY_MS = 15_000; // a real position: at most one ping per 15 s
const COUPONS_EVERY_MS = 30_000; // values step once a minute: refresh twice a minute
const TICK_MS = 1_000; // the coupons' "expires in m:ss" counts down every second

const panel = document.getElementById("geo-panel");
const shop = panel ? panel.dataset.shop : null; // the stream's shop (slug, as the API names shops)

const state = {
  consent: false,
  venues: new Map(), // id -> venue (this shop's, from GET /api/v1/venues/)
  inside: new Map(), // id -> "inside" | "outside" as the server last said
  coupons: [],
  watch: null,
  lastPingAt: 0,
  loading: false,
  loadedAt: 0,
};

const els = panel && {
  share: document.getElementById("geo-share"),
  stop: document.getElementById("geo-stop"),
  simulate: document.getElementById("geo-simulate"),
  place: document.getElementById("geo-place"),
  send: document.getElementById("geo-send"),
  status: document.getElementById("geo-status"),
  coupons: document.getElementById("geo-coupons"),
  announcements: document.getElementById("geo-announcements"),
};

function say(text, kind = "") {
  els.status.textContent = text;
  els.status.dataset.kind = kind;
}

// -- geometry for the simulated places (the server decides what is inside) ---------------

function inRing(lon, lat, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > lat !== yj > lat && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function inPolygon(lon, lat, rings) {
  return inRing(lon, lat, rings[0]) && !rings.slice(1).some((hole) => inRing(lon, lat, hole));
}

/** A point well inside a venue's fence: the centre of a circle; for a polygon the point of
 * a grid over its largest ring's box that lies inside and farthest from the box's edge. */
function insidePoint(fence) {
  const geometry = fence.geometry;
  if (geometry.type === "Point") return geometry.coordinates;
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  const rings = polygons[0];
  const xs = rings[0].map((p) => p[0]);
  const ys = rings[0].map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const mid = [(x0 + x1) / 2, (y0 + y1) / 2];
  if (inPolygon(mid[0], mid[1], rings)) return mid;
  let best = null;
  const steps = 24;
  for (let i = 1; i < steps; i++) {
    for (let j = 1; j < steps; j++) {
      const lon = x0 + ((x1 - x0) * i) / steps;
      const lat = y0 + ((y1 - y0) * j) / steps;
      if (!inPolygon(lon, lat, rings)) continue;
      const margin = Math.min(lon - x0, x1 - lon, lat - y0, y1 - lat);
      if (!best || margin > best[2]) best = [lon, lat, margin];
    }
  }
  return best ? [best[0], best[1]] : rings[0][0];
}

function simulatedPlaces() {
  const places = [];
  for (const venue of state.venues.values()) {
    const [lon, lat] = insidePoint(venue.fence);
    places.push({ label: `Inside ${venue.name}`, lat, lon });
    places.push({ label: `2 km from ${venue.name}`, lat: lat + 0.018, lon });
  }
  return places;
}

// -- consent ---------------------------------------------------------------------------------

function renderConsent() {
  els.share.hidden = state.consent;
  els.stop.hidden = !state.consent;
  if (panel.dataset.simulate === "1" && state.venues.size) els.simulate.hidden = false;
}

async function setConsent(granted) {
  const result = await api("/api/v1/me/consents/location/", { method: "PUT", body: { granted } });
  if (!result.ok) {
    say(result.data?.message || "Could not change your location setting — try again.", "error");
    return false;
  }
  state.consent = result.data.granted;
  renderConsent();
  if (!granted) {
    stopWatching();
    for (const [id, venueState] of state.inside) if (venueState === "inside") tell(id, "outside");
    state.inside.clear();
    const n = result.data.deleted ?? 0;
    say(`Location sharing is off. ${n} stored record${n === 1 ? "" : "s"} of where you were deleted.`);
  }
  return true;
}

// -- pings -----------------------------------------------------------------------------------

function tell(venueId, venueState) {
  const venue = state.venues.get(venueId);
  document.dispatchEvent(
    new CustomEvent("cc:venue", { detail: { venue: venueId, state: venueState, name: venue?.name ?? "" } }),
  );
}

async function ping({ lat, lon, accuracy_m }) {
  const body = { lat, lon, accuracy_m, at: new Date().toISOString() };
  const result = await api("/api/v1/geo/pings/", { method: "POST", body });
  if (result.status === 403 && result.data?.code === "consent_required") {
    state.consent = false;
    renderConsent();
    say("Share your location first.", "error");
    return;
  }
  if (result.status === 429) {
    say("Position updates are coming too fast; the next one counts.");
    return;
  }
  if (!result.ok) {
    say(result.data?.message || "Your position could not be sent.", "error");
    return;
  }
  const data = result.data;
  if (data.ignored) {
    say(data.ignored === "inaccurate" ? "Your position is too rough to tell; waiting for a better fix." : "That position is too old.");
    return;
  }
  let here = null;
  let arrived = false;
  for (const item of data.venues || []) {
    if (!state.venues.has(item.id)) continue; // another shop's venue
    const before = state.inside.get(item.id);
    state.inside.set(item.id, item.state);
    if (item.state !== before) tell(item.id, item.state);
    if (item.state === "inside") {
      here = state.venues.get(item.id);
      arrived = arrived || before !== "inside";
    }
  }
  say(here ? `You're at ${here.name}.` : "You're not at one of this shop's venues right now.");
  renderAnnouncements(data.announcements || []);
  if ((data.coupons || []).length) {
    say(`${here ? `You're at ${here.name}. ` : ""}New coupon: ${data.coupons.map((c) => c.label).join(", ")}.`, "ok");
  } else if (here && arrived && !(await refreshVenue(here.id))?.open_now) {
    // Presence counts at any hour, coupons only while the venue is open (docs/geofences.md,
    // "Opening hours"): say so, rather than leave the viewer waiting for one.
    say(`You're at ${here.name}. It's closed right now: coupons are given while it's open.`);
  }
  await loadCoupons();
}

/** The venue as GET /api/v1/venues/ has it now (its open_now changes with the hours). */
async function refreshVenue(id) {
  const result = await api("/api/v1/venues/");
  if (result.ok && Array.isArray(result.data)) {
    for (const venue of result.data) if (state.venues.has(venue.id)) state.venues.set(venue.id, venue);
  }
  return state.venues.get(id);
}

function onPosition(position) {
  const now = Date.now();
  if (now - state.lastPingAt < PING_EVERY_MS) return;
  state.lastPingAt = now;
  const { latitude: lat, longitude: lon, accuracy } = position.coords;
  ping({ lat, lon, accuracy_m: Math.max(1, Math.round(accuracy)) });
}

function onPositionError(error) {
  if (error.code === 1) {
    say("Your browser isn't sharing your position with this page: allow location for this site, or stop sharing.", "error");
  } else {
    say("Your position isn't available right now; still trying.", "error");
  }
}

function startWatching() {
  if (state.watch !== null) return;
  if (!("geolocation" in navigator)) {
    say("This browser can't tell the page where you are.", "error");
    return;
  }
  state.watch = navigator.geolocation.watchPosition(onPosition, onPositionError, {
    enableHighAccuracy: true,
    maximumAge: 10_000,
  });
}

function stopWatching() {
  if (state.watch !== null) navigator.geolocation.clearWatch(state.watch);
  state.watch = null;
}

// -- coupons and announcements ----------------------------------------------------------

function couponValue(coupon) {
  if (coupon.redeemed_at) return "Used";
  if (!usable(coupon)) return "Expired";
  if (coupon.kind === "percent") return `${Number(coupon.value_now)}% off`;
  return `${money(coupon.value_now, coupon.currency)} off`;
}

function usable(coupon, now = Date.now()) {
  return !coupon.redeemed_at && Date.parse(coupon.expires_at) > now && Number(coupon.value_now) > 0;
}

function renderCoupons() {
  els.coupons.replaceChildren(
    ...state.coupons
      .filter((c) => c.shop === shop)
      .map((coupon) => {
        const live = usable(coupon);
        const left = countdown(coupon.expires_at);
        return h(
          "li",
          { class: `geo__coupon${live ? "" : " is-spent"}`, dataset: { code: coupon.code } },
          h("strong", {}, couponValue(coupon)),
          " ",
          h("span", {}, coupon.label),
          coupon.sku ? h("span", { class: "muted small" }, ` · on ${coupon.sku}`) : h("span", { class: "muted small" }, " · whole shop"),
          h(
            "span",
            { class: "muted small geo__when", dataset: live ? { expires: coupon.expires_at } : {} },
            coupon.redeemed_at ? "" : live ? whenText(left) : " · expired",
          ),
        );
      }),
  );
}

function whenText(left) {
  return ` · applied at checkout · expires in ${left}`;
}

/** Every second: count the expiry down, and fetch the coupons again once one expires or
 * its value steps down (next_value_at), so the value shown is the one checkout takes. */
function tickCoupons() {
  const now = Date.now();
  let stale = false;
  for (const node of els.coupons.querySelectorAll(".geo__when[data-expires]")) {
    const left = countdown(node.dataset.expires, now);
    if (left) node.textContent = whenText(left);
    else stale = true;
  }
  const stepped = state.coupons.some((c) => usable(c, now) && c.next_value_at && Date.parse(c.next_value_at) <= now);
  if (stepped && now - state.loadedAt > 5_000) stale = true; // a clock ahead of the server's: not every second
  if (stale && !state.loading) loadCoupons();
}

async function loadCoupons() {
  state.loading = true;
  try {
    const result = await api("/api/v1/me/coupons/");
    if (result.ok && Array.isArray(result.data)) {
      state.coupons = result.data;
      state.loadedAt = Date.now();
      renderCoupons();
    }
  } finally {
    state.loading = false;
  }
}

function renderAnnouncements(items) {
  els.announcements.replaceChildren(
    ...items
      .filter((a) => state.venues.has(a.venue))
      .map((a) =>
        h("li", { class: "geo__announcement" }, h("strong", {}, a.name), " — ", a.text, h("span", { class: "muted small" }, ` · starts ${when(a.starts_at)}`)),
      ),
  );
}

/** "20:00" today, "Sat 20:00" another day, in the viewer's own time zone. */
function when(iso) {
  const at = new Date(iso);
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return at.toDateString() === new Date().toDateString() ? time : `${at.toLocaleDateString([], { weekday: "short" })} ${time}`;
}

/** The code of the coupon a buy of `sku` should carry: the most valuable usable one of this
 * shop that covers the SKU (or the whole shop); the server prices it (and refuses it
 * if it no longer applies). */
function couponFor(sku) {
  const usableHere = state.coupons.filter(
    (c) => usable(c) && c.shop === shop && (!c.sku || c.sku === sku),
  );
  usableHere.sort((a, b) => Number(b.value_now) - Number(a.value_now));
  return usableHere[0]?.code ?? null;
}

// -- start -------------------------------------------------------------------------------

async function init() {
  window.ccGeo = { couponFor, refresh: loadCoupons };
  const signedIn = panel.dataset.signedIn === "1";
  const [consents, venues] = await Promise.all([
    signedIn ? api("/api/v1/me/consents/") : Promise.resolve({ data: [] }),
    api("/api/v1/venues/"),
  ]);
  if (venues.ok) {
    for (const venue of venues.data) if (venue.shop === shop) state.venues.set(venue.id, venue);
  }
  if (!state.venues.size) {
    panel.hidden = true; // this shop has no pop-up venue: nothing to invite anyone to
    return;
  }
  if (!signedIn) return; // the panel invites to log in
  const location = (consents.data || []).find?.((c) => c.kind === "location");
  state.consent = Boolean(location?.granted);
  els.place.replaceChildren(
    ...simulatedPlaces().map((p, i) => h("option", { value: String(i), dataset: { lat: p.lat, lon: p.lon } }, p.label)),
  );
  renderConsent();
  els.share.addEventListener("click", async () => {
    if (await setConsent(true)) {
      say("Location sharing is on.");
      if (panel.dataset.simulate !== "1") startWatching();
    }
  });
  els.stop.addEventListener("click", () => setConsent(false));
  els.send.addEventListener("click", async () => {
    const option = els.place.selectedOptions[0];
    if (!option) return;
    if (!state.consent && !(await setConsent(true))) return;
    await ping({ lat: Number(option.dataset.lat), lon: Number(option.dataset.lon), accuracy_m: 10 });
  });
  document.addEventListener("cc:order", loadCoupons);
  if (state.consent && panel.dataset.simulate !== "1") startWatching();
  await loadCoupons();
  setInterval(() => state.coupons.some((c) => usable(c)) && loadCoupons(), COUPONS_EVERY_MS);
  setInterval(tickCoupons, TICK_MS);
}

if (panel) init();
