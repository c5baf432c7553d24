// The stream page's "Don't miss it" panel (templates/calendars/_stream_panel.html;
// docs/calendars.md, "In the browser"): "Remind me" (POST/DELETE
// /api/v1/streams/{id}/reminder/) and "Follow <shop>" (POST/DELETE
// /api/v1/shops/{slug}/follow/). Times are shown in the viewer's reminder zone, which the
// panel names. The stream page tells it of status changes with a "cc:stream" event.
import { api, h, zonedTime } from "./live.js";

const panel = document.getElementById("remind-panel");
const state = panel && JSON.parse(document.getElementById("remind-initial").textContent);
const els = panel && {
  remind: document.getElementById("remind-toggle"),
  follow: document.getElementById("follow-toggle"),
  status: document.getElementById("remind-status"),
};

const CHANNEL_NAMES = { email: "e-mail", inapp: "in-app" };

/** "New York time" for America/New_York: the zone's city, as people say it. */
function zoneName() {
  const city = (state.time_zone || "UTC").split("/").at(-1).replaceAll("_", " ");
  return `${city} time`;
}

function settingsLink(text = "Change your reminder settings") {
  return h("a", { href: "/me/calendar/" }, text);
}

/** What a reminder will do, in words (docs/calendars.md, "Reminders": the statuses). */
function reminderMessage(reminder) {
  const when = (iso) => `${zonedTime(iso, state.time_zone)} ${zoneName()}`;
  switch (reminder.status) {
    case "scheduled": {
      const channels = reminder.channels.map((c) => CHANNEL_NAMES[c] || c).join(", ");
      const parts = [`We'll remind you at ${when(reminder.deliver_at)} (${channels || "no channel chosen: nothing will be sent"}).`];
      const target = Date.parse(reminder.starts_at) - (state.lead_minutes || 0) * 60_000;
      if (Date.parse(reminder.deliver_at) < target) {
        parts.push(` That's earlier than ${state.lead_minutes} minutes before the drop: that moment is in your quiet hours or outside your windows.`);
      }
      return [parts.join("")];
    }
    case "sent":
      return [`Your reminder went out at ${when(reminder.deliver_at)}.`];
    case "unschedulable":
      return [
        "We can't remind you of this drop: in the 8 days before it there is no moment outside your quiet hours and inside your windows. ",
        settingsLink(),
        ".",
      ];
    case "missed":
      return [
        "Too late for a reminder: the time left before the drop falls in your quiet hours or outside your windows, so nothing will be sent. ",
        settingsLink(),
        ".",
      ];
    case "cancelled":
      return ["This drop was cancelled, so there is nothing to remind you of."];
    default:
      return [`Reminder: ${reminder.status}.`];
  }
}

function say(parts, kind = "") {
  els.status.replaceChildren(...parts);
  els.status.dataset.kind = kind;
}

function failure(result, fallback) {
  if (result.network) return ["You're offline: nothing was changed."];
  if (result.status === 401 || result.status === 403) {
    return ["Your session has expired. ", h("a", { href: `/accounts/login/?next=${encodeURIComponent(location.pathname)}` }, "Log in again"), "."];
  }
  if (result.data?.code === "stream_not_scheduled") return ["Reminders are only for drops that haven't started yet."];
  return [result.data?.message || fallback];
}

function render() {
  if (els.remind) els.remind.setAttribute("aria-pressed", String(Boolean(state.reminder)));
  if (els.follow) els.follow.setAttribute("aria-pressed", String(Boolean(state.following)));
}

async function toggleReminder() {
  const on = Boolean(state.reminder);
  els.remind.disabled = true;
  const result = await api(`/api/v1/streams/${state.stream}/reminder/`, { method: on ? "DELETE" : "POST" });
  els.remind.disabled = false;
  if (!result.ok) {
    say(failure(result, "We couldn't change the reminder. Try again."), "error");
    return;
  }
  state.reminder = on ? null : result.data;
  render();
  if (on) say(["Reminder stopped: we won't remind you of this drop."]);
  else say(reminderMessage(state.reminder), state.reminder.status === "scheduled" ? "ok" : "warn");
}

async function toggleFollow() {
  const on = Boolean(state.following);
  els.follow.disabled = true;
  const result = await api(`/api/v1/shops/${encodeURIComponent(state.shop)}/follow/`, { method: on ? "DELETE" : "POST" });
  els.follow.disabled = false;
  if (!result.ok) {
    say(failure(result, "We couldn't change the follow. Try again."), "error");
    return;
  }
  state.following = !on;
  render();
  say(
    state.following
      ? [`You follow ${state.shop_name}: its drops appear in your calendar feed. `, settingsLink("Your calendar"), "."]
      : [`You no longer follow ${state.shop_name}.`],
    "ok",
  );
}

if (panel && state.signed_in) {
  render();
  if (state.reminder) say(reminderMessage(state.reminder), state.reminder.status === "scheduled" ? "" : "warn");
  els.remind?.addEventListener("click", toggleReminder);
  els.follow?.addEventListener("click", toggleFollow);
  // The drop went live, ended or was cancelled while the page is open: no new reminders.
  document.addEventListener("cc:stream", (event) => {
    if (!els.remind || event.detail.status === "scheduled") return;
    if (!state.reminder) els.remind.hidden = true;
    else if (event.detail.status === "cancelled") say(reminderMessage({ ...state.reminder, status: "cancelled" }), "warn");
  });
}
