// The viewer's calendar page, /me/calendar/ (templates/calendars/my_calendar.html;
// docs/calendars.md, "In the browser"). The server renders everything in the viewer's
// reminder zone; this script changes things through the calendars API and, after the
// preferences change (reminders are recomputed, the zone may be another), fetches the page
// again and swaps in its [data-refresh] sections, so the server stays the one renderer.
import { api } from "./live.js";

const form = document.getElementById("prefs-form");
const els = {
  zone: document.getElementById("pref-zone"),
  quietOn: document.getElementById("pref-quiet-on"),
  quietStart: document.getElementById("pref-quiet-start"),
  quietEnd: document.getElementById("pref-quiet-end"),
  quietTimes: document.getElementById("quiet-times"),
  windows: document.getElementById("windows"),
  windowTemplate: document.getElementById("window-template"),
  addWindow: document.getElementById("add-window"),
  lead: document.getElementById("pref-lead"),
  save: document.getElementById("prefs-save"),
  prefsStatus: document.getElementById("prefs-status"),
  feedOn: document.getElementById("feed-on"),
  feedBox: document.getElementById("feed-box"),
  feedUrl: document.getElementById("feed-url"),
  feedCopy: document.getElementById("feed-copy"),
  feedSubscribe: document.getElementById("feed-subscribe"),
  feedRotate: document.getElementById("feed-rotate"),
  feedOffHint: document.getElementById("feed-off-hint"),
  feedStatus: document.getElementById("feed-status"),
};

// What each refusal of PUT /api/v1/me/preferences/ means, next to its field
// (docs/calendars.md, "Errors"); anything else shows the API's own message.
const PREF_ERRORS = {
  invalid_time_zone: "Choose a time zone from the list.",
  invalid_time: "Enter a time such as 08:00.",
  invalid_quiet_hours: "Quiet hours start and end at the same time. Untick quiet hours for none.",
  invalid_window: "A window ends after it starts, on the same day (until 00:00 is midnight).",
  overlapping_windows: "Two windows of the same day overlap.",
  invalid_channel: "Choose e-mail, in-app, or neither.",
  invalid_lead_minutes: "Enter whole minutes from 0 to 10080 (a week).",
};

function say(node, text, kind = "") {
  node.textContent = text;
  node.dataset.kind = kind;
}

function failure(result, fallback) {
  if (result.network) return "You're offline: nothing was changed.";
  if (result.status === 401 || result.status === 403) return "Your session has expired: reload the page and log in again.";
  return result.data?.message || fallback;
}

// -- preferences ------------------------------------------------------------------------------

function syncQuiet() {
  const on = els.quietOn.checked;
  els.quietStart.disabled = !on;
  els.quietEnd.disabled = !on;
  els.quietTimes.classList.toggle("is-off", !on);
}

function windowRows() {
  return [...els.windows.querySelectorAll(".window-row")];
}

function numberRows() {
  windowRows().forEach((row, index) => {
    const n = index + 1;
    row.querySelector('[data-field="weekday"]').setAttribute("aria-label", `Window ${n}: day`);
    row.querySelector('[data-field="start"]').setAttribute("aria-label", `Window ${n}: from`);
    row.querySelector('[data-field="end"]').setAttribute("aria-label", `Window ${n}: until`);
    row.querySelector("[data-remove-window]").setAttribute("aria-label", `Remove window ${n}`);
    row.querySelector(".field-error").dataset.errorFor = `windows[${index}]`;
  });
}

function clearErrors() {
  form.querySelectorAll(".field-error").forEach((p) => {
    p.hidden = true;
    p.textContent = "";
  });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

/** The inputs a refusal's `field` names: "lead_minutes", "quiet_hours.start", "windows[2].end"... */
function inputsFor(field) {
  const row = /^windows\[(\d+)\](?:\.(\w+))?$/.exec(field);
  if (row) {
    const li = windowRows()[Number(row[1])];
    if (!li) return { error: document.getElementById("err-windows"), inputs: [] };
    const inputs = row[2] ? [li.querySelector(`[data-field="${row[2]}"]`)] : [...li.querySelectorAll("select, input")];
    return { error: li.querySelector(".field-error"), inputs: inputs.filter(Boolean) };
  }
  const [head, part] = field.split(".");
  const byField = {
    time_zone: [els.zone],
    quiet_hours: part === "start" ? [els.quietStart] : part === "end" ? [els.quietEnd] : [els.quietStart, els.quietEnd],
    windows: windowRows().flatMap((li) => [...li.querySelectorAll("input")]),
    channels: [...form.querySelectorAll('input[name="channels"]')],
    lead_minutes: [els.lead],
  };
  return { error: form.querySelector(`.field-error[data-error-for="${head}"]`), inputs: byField[head] || [] };
}

function showError(field, text) {
  const { error, inputs } = inputsFor(field);
  inputs.forEach((input) => input.setAttribute("aria-invalid", "true"));
  if (error) {
    error.textContent = text;
    error.hidden = false;
  }
  (inputs[0] || els.save).focus();
}

function collect() {
  const lead = els.lead.value.trim();
  return {
    time_zone: els.zone.value,
    quiet_hours: els.quietOn.checked ? { start: els.quietStart.value, end: els.quietEnd.value } : null,
    windows: windowRows().map((li) => {
      const end = li.querySelector('[data-field="end"]').value;
      return {
        weekday: Number(li.querySelector('[data-field="weekday"]').value),
        start: li.querySelector('[data-field="start"]').value,
        end: end === "00:00" ? "24:00" : end, // until midnight
      };
    }),
    channels: [...form.querySelectorAll('input[name="channels"]:checked')].map((c) => c.value),
    lead_minutes: /^\d+$/.test(lead) ? Number(lead) : lead, // not a number: the API says so
  };
}

/** Fetch this page again and swap in its [data-refresh] sections (times in the new zone). */
async function refreshSections() {
  let html;
  try {
    const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) return;
    html = await response.text();
  } catch (error) {
    return;
  }
  const fresh = new DOMParser().parseFromString(html, "text/html");
  for (const section of document.querySelectorAll("[data-refresh]")) {
    const replacement = fresh.getElementById(section.id);
    if (replacement) section.replaceWith(document.importNode(replacement, true));
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const body = collect();
  if (typeof body.lead_minutes !== "number") {
    showError("lead_minutes", PREF_ERRORS.invalid_lead_minutes);
    say(els.prefsStatus, "Not saved: check the highlighted field.", "error");
    return;
  }
  els.save.disabled = true;
  say(els.prefsStatus, "Saving…");
  const result = await api("/api/v1/me/preferences/", { method: "PUT", body });
  els.save.disabled = false;
  if (result.ok) {
    await refreshSections();
    say(els.prefsStatus, `Saved. Your reminders were recomputed; times are in ${result.data.time_zone}.`, "ok");
    return;
  }
  const data = result.data || {};
  if (result.status === 400 && data.field) {
    showError(data.field, PREF_ERRORS[data.code] || data.message);
  } else if (result.status === 400 && data.errors) {
    const [field, list] = Object.entries(data.errors)[0];
    showError(field, (Array.isArray(list) && list[0]?.message) || data.message);
  }
  say(els.prefsStatus, result.status === 400 ? "Not saved: check the highlighted field." : failure(result, "Not saved. Try again."), "error");
});

els.quietOn.addEventListener("change", syncQuiet);
els.addWindow.addEventListener("click", () => {
  const row = els.windowTemplate.content.firstElementChild.cloneNode(true);
  // The next day after the last window's, so a week is quick to fill in.
  const last = windowRows().at(-1);
  if (last) row.querySelector('[data-field="weekday"]').value = String((Number(last.querySelector('[data-field="weekday"]').value) + 1) % 7);
  els.windows.append(row);
  numberRows();
  row.querySelector("select").focus();
});
els.windows.addEventListener("click", (event) => {
  const button = event.target.closest("[data-remove-window]");
  if (!button) return;
  button.closest(".window-row").remove();
  numberRows();
  els.addWindow.focus();
});
syncQuiet();
numberRows();

// -- reminders, notifications, follows (buttons inside sections that get swapped) ------------

document.addEventListener("click", async (event) => {
  const stop = event.target.closest("[data-stop]");
  const read = event.target.closest("[data-read]");
  const unfollow = event.target.closest("[data-unfollow]");
  if (stop) {
    stop.disabled = true;
    const item = stop.closest(".cal-item");
    const title = item.querySelector(".cal-item__title").textContent;
    const result = await api(`/api/v1/streams/${stop.dataset.stop}/reminder/`, { method: "DELETE" });
    const status = document.getElementById("reminders-status");
    if (!result.ok) {
      stop.disabled = false;
      say(status, failure(result, "We couldn't stop that reminder. Try again."), "error");
      return;
    }
    item.remove();
    say(status, `Reminder of “${title}” ${stop.textContent === "Remove" ? "removed" : "stopped"}.`, "ok");
  } else if (read) {
    read.disabled = true;
    const result = await api(`/api/v1/me/notifications/${read.dataset.read}/read/`, { method: "POST" });
    const status = document.getElementById("notifications-status");
    if (!result.ok) {
      read.disabled = false;
      say(status, failure(result, "We couldn't mark it read. Try again."), "error");
      return;
    }
    const item = read.closest(".cal-item");
    item.classList.remove("unread");
    item.querySelector(".unread-mark")?.remove();
    read.remove();
    say(status, "Marked as read.", "ok");
  } else if (unfollow) {
    unfollow.disabled = true;
    const result = await api(`/api/v1/shops/${encodeURIComponent(unfollow.dataset.unfollow)}/follow/`, { method: "DELETE" });
    const status = document.getElementById("follows-status");
    if (!result.ok) {
      unfollow.disabled = false;
      say(status, failure(result, "We couldn't unfollow. Try again."), "error");
      return;
    }
    unfollow.closest(".cal-item").remove();
    say(status, `You no longer follow ${unfollow.dataset.name}; its drops leave your calendar feed.`, "ok");
  }
});

// -- the private calendar feed ----------------------------------------------------------------

function showFeed(url) {
  els.feedBox.hidden = !url;
  els.feedOffHint.hidden = !url;
  els.feedOn.checked = Boolean(url);
  els.feedUrl.value = url || "";
  els.feedSubscribe.href = url ? `webcal://${url.split("://")[1]}` : "#";
}

els.feedOn.addEventListener("change", async () => {
  const granted = els.feedOn.checked;
  els.feedOn.disabled = true;
  const result = await api("/api/v1/me/consents/calendar/", { method: "PUT", body: { granted } });
  els.feedOn.disabled = false;
  if (!result.ok) {
    els.feedOn.checked = !granted;
    say(els.feedStatus, failure(result, "We couldn't change that. Try again."), "error");
    return;
  }
  if (granted) {
    showFeed(result.data.feed_url);
    say(els.feedStatus, "Calendar feed on. Subscribe with the link below; keep it private.", "ok");
  } else {
    showFeed(null);
    say(els.feedStatus, "Calendar feed off. The link was deleted and no longer works; calendar apps subscribed to it stop getting updates.", "ok");
  }
});

els.feedRotate.addEventListener("click", async () => {
  els.feedRotate.disabled = true;
  const result = await api("/api/v1/me/calendar-feed/", { method: "POST" });
  els.feedRotate.disabled = false;
  if (!result.ok) {
    say(els.feedStatus, failure(result, "We couldn't make a new link. Try again."), "error");
    return;
  }
  showFeed(result.data.feed_url);
  say(els.feedStatus, "New link ready. The old link stopped working: subscribe again with this one.", "ok");
});

els.feedCopy.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(els.feedUrl.value);
    say(els.feedStatus, "Link copied.", "ok");
  } catch (error) {
    // No clipboard (an insecure context, or permission refused): select it for the user.
    els.feedUrl.focus();
    els.feedUrl.select();
    say(els.feedStatus, "Press Ctrl+C (or ⌘C) to copy the selected link.");
  }
});
