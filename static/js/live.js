// Shared by the stream page and the control room: JSON API calls with the session cookie
// and CSRF header, money and time formatting, and a WebSocket that reconnects by itself.

export function cookie(name) {
  const prefix = `${name}=`;
  for (const part of document.cookie.split(";")) {
    const item = part.trim();
    if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
  }
  return "";
}

/**
 * fetch() for /api/v1/: JSON in and out, same-origin cookies, CSRF header on writes.
 * Never throws: a network failure comes back as {status: 0, network: true}.
 */
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRFToken"] = cookie("csrftoken");
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    return { ok: false, status: 0, network: true, data: null, headers: new Headers() };
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  return { ok: response.ok, status: response.status, network: false, data, headers: response.headers };
}

const moneyFormats = new Map();
export function money(amount, currency = "USD") {
  const value = Number(amount);
  if (!Number.isFinite(value)) return "";
  let format = moneyFormats.get(currency);
  if (!format) {
    try {
      format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    } catch (error) {
      format = { format: (v) => `${v.toFixed(2)} ${currency}` };
    }
    moneyFormats.set(currency, format);
  }
  return format.format(value);
}

/** "12:04" or "1:02:03" until `iso`; "" once it has passed. */
export function countdown(iso, now = Date.now()) {
  const left = Math.max(0, Math.floor((Date.parse(iso) - now) / 1000));
  if (!left) return "";
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

export const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

/** Tiny DOM builder: h("li", {class: "x", dataset: {sku}}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function wsUrl(path) {
  return `${window.location.protocol === "https:" ? "wss:" : "ws:"}//${window.location.host}${path}`;
}

const PING_EVERY_MS = 20_000;
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

/**
 * A WebSocket that comes back: on close or failure it reconnects after an exponential
 * backoff with jitter (1 s doubling to 30 s, each delay drawn from [d/2, d]), asking
 * `connectUrl()` for the URL every time (the stream page reuses its viewer token while it
 * is valid). The backoff resets only once the server has sent a first message (the
 * snapshot), so a socket the server accepts and closes at once (bad token, 4401) does not
 * spin.
 *
 * onState("live" | "down", detail) tells the page when live updates start and stop;
 * onClose(code), if given, hears every close, failed reconnects included.
 */
export class LiveSocket {
  constructor({ connectUrl, onMessage, onState, onClose }) {
    this.connectUrl = connectUrl;
    this.onMessage = onMessage;
    this.onState = onState;
    this.onClose = onClose || (() => {});
    this.attempt = 0;
    this.ws = null;
    this.live = false;
    this.timer = null;
    this.pinger = null;
    this.stopped = false;
    this.connecting = false;
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.drop());
  }

  start() {
    this.connect();
  }

  /** Skip the wait (the network came back). */
  reconnectNow() {
    if (this.stopped || this.ws || this.connecting) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  /** Close the current socket (it reconnects on its own). */
  drop() {
    if (this.ws) this.ws.close();
  }

  delay() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  setLive(live, detail = {}) {
    if (this.live === live) return;
    this.live = live;
    this.onState(live ? "live" : "down", detail);
  }

  async connect() {
    if (this.stopped || this.connecting) return;
    this.timer = null;
    this.connecting = true;
    let url = null;
    try {
      url = await this.connectUrl();
    } catch (error) {
      url = null;
    }
    this.connecting = false;
    if (!url) {
      this.setLive(false, { reason: "token" });
      this.retry();
      return;
    }
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (error) {
      this.retry();
      return;
    }
    this.ws = ws;
    let greeted = false;
    ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (!greeted) {
        greeted = true;
        this.attempt = 0;
        this.setLive(true);
      }
      this.onMessage(message);
    });
    ws.addEventListener("open", () => {
      clearInterval(this.pinger);
      this.pinger = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
      }, PING_EVERY_MS);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pinger);
      this.onClose(event.code);
      this.setLive(false, { code: event.code });
      this.retry();
    });
    // "error" is always followed by "close", which does the work.
  }

  retry() {
    if (this.stopped || this.timer) return;
    const wait = this.delay();
    this.retryAt = Date.now() + wait;
    this.timer = setTimeout(() => this.connect(), wait);
  }

  /**
   * The server just answered another request of the page's (its poll) while the socket is
   * down: try the socket within a second rather than wait out a backoff that may have grown
   * to 30 s while the server was restarting. The backoff is not reset: a socket refused
   * again waits as long as before.
   */
  reconnectSoon() {
    if (this.stopped || this.ws || this.connecting || !this.timer) return;
    const wait = Math.random() * 1000;
    if (this.retryAt <= Date.now() + wait) return;
    clearTimeout(this.timer);
    this.retryAt = Date.now() + wait;
    this.timer = setTimeout(() => this.connect(), wait);
  }
}

const zonedFormats = new Map();
/**
 * "Fri 13 Mar, 21:59": an instant as the wall-clock time of `timeZone` (an IANA name), the
 * pages' own format (Django's "D j M, H:i"); callers say which zone.
 */
export function zonedTime(iso, timeZone) {
  if (!iso) return "";
  let format = zonedFormats.get(timeZone);
  if (!format) {
    const options = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    try {
      format = new Intl.DateTimeFormat("en-GB", { ...options, timeZone });
    } catch (error) {
      format = new Intl.DateTimeFormat("en-GB", { ...options, timeZone: "UTC" });
    }
    zonedFormats.set(timeZone, format);
  }
  return format.format(new Date(iso));
}
