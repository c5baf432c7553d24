// When the server is too busy (docs/overload.md): a request refused with 503 overloaded (the
// process's admission control, or the proxy's) reached no view, and one refused with 429
// rate_limited was stopped by the throttle before the view ran: either way nothing was done,
// so the very same request may be sent again. Both answers say Retry-After. The stream
// page's buys and the control room's controls retry through here (docs/overload.md, "The
// storefront retries", "The control room retries"): one way to wait out a busy server.
import { api } from "./live.js";

export const RETRY_TRIES = 6; // tries in all, the first included
const RETRY_BASE_MS = 400; // the random part of the wait: up to 0.4, 0.8, 1.6, 3.2, 6.4 s
const RETRY_CAP_MS = 8_000;
const RETRY_AFTER_DEFAULT_S = 1; // an answer without a usable Retry-After

/** The server was too busy for this request and did nothing: it may be sent again. */
export function busyAnswer(result) {
  const code = result.data?.code;
  return (result.status === 503 && code === "overloaded") || (result.status === 429 && code === "rate_limited");
}

/** How long to wait before try number ``attempt + 2`` (attempt 0: the first try was refused):
 *  Retry-After, then a random wait that doubles each time, so a refused crowd spreads out. */
export function retryDelay(result, attempt) {
  const seconds = Number(result.headers.get("Retry-After") ?? result.data?.retry_after);
  const floor = (Number.isFinite(seconds) && seconds > 0 ? seconds : RETRY_AFTER_DEFAULT_S) * 1000;
  return floor + Math.random() * Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** attempt);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * ``api(path, options)``, sent again unchanged (same body, same headers: an Idempotency-Key
 * included) while the server answers busy, at most RETRY_TRIES times in all. Before each
 * wait ``onBusy({result, attempt, wait})`` hears of it (to say "Busy — retrying…"); it may
 * return false to stop there. Resolves to the last answer: when ``busyAnswer`` of it is
 * still true, the server was too busy every time (or onBusy stopped) and nothing was done.
 * Any other answer, a network failure included, is returned at once: only a refusal is
 * known to have done nothing.
 */
export async function apiRetrying(path, options = {}, { onBusy = () => true } = {}) {
  for (let attempt = 0; ; attempt++) {
    const result = await api(path, options);
    if (!busyAnswer(result) || attempt + 1 >= RETRY_TRIES) return result;
    const wait = retryDelay(result, attempt);
    if (onBusy({ result, attempt, wait }) === false) return result;
    await sleep(wait);
  }
}
