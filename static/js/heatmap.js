// The audience heatmap on a drop's admin page (docs/calendars.md, "Audience heatmap"): marks
// the slot of the start typed in the form, and loads the counts of the week typed from
// GET /api/v1/shops/{slug}/audience-availability/?week=YYYY-MM-DD (the page's session).
(function () {
  "use strict";
  var table = document.getElementById("audience-heatmap");
  if (!table) return;
  var dateInput = document.getElementById("id_starts_at_0");
  var timeInput = document.getElementById("id_starts_at_1");
  var note = document.getElementById("audience-chosen");
  var sameZone = table.dataset.sameZone === "1";
  var DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function typed() {
    if (!dateInput || !timeInput) return null;
    var d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dateInput.value.trim());
    var t = /^(\d{1,2}):(\d{2})(:\d{2})?$/.exec(timeInput.value.trim());
    if (!d || !t) return null;
    var day = new Date(Date.UTC(+d[1], +d[2] - 1, +d[3]));
    var weekday = (day.getUTCDay() + 6) % 7;
    var monday = new Date(day.getTime() - weekday * 86400000);
    var hour = +t[1];
    if (hour > 23) return null;
    return {weekday: weekday, hour: hour, week: monday.toISOString().slice(0, 10)};
  }

  function mark(slot) {
    table.querySelectorAll("td.audience-chosen").forEach(function (td) {
      td.classList.remove("audience-chosen");
      td.style.outline = "";
      td.style.fontWeight = "";
    });
    if (!slot) return;
    var td = table.querySelector('td[data-weekday="' + slot.weekday + '"][data-hour="' + slot.hour + '"]');
    if (!td) return;
    td.classList.add("audience-chosen");
    td.style.outline = "3px solid #d9480f";
    td.style.outlineOffset = "-3px";
    td.style.fontWeight = "bold";
    if (note) {
      note.textContent = "Chosen slot: " + DAYS[slot.weekday] + " " + pad(slot.hour) + ":00, " +
        td.dataset.count + " follower(s) available.";
    }
  }

  function paint(data) {
    var top = 0;
    data.counts.forEach(function (day) { day.forEach(function (c) { if (c > top) top = c; }); });
    var missing = {};
    data.missing_hours.forEach(function (m) { missing[m[0] + ":" + m[1]] = true; });
    table.dataset.weekStart = data.week_start;
    table.querySelectorAll("td.audience-cell").forEach(function (td) {
      var w = +td.dataset.weekday, h = +td.dataset.hour, c = data.counts[w][h];
      td.dataset.count = c;
      td.textContent = missing[w + ":" + h] ? "\u2013" : String(c);
      td.style.background = "rgba(32,120,200," + (top ? (c / top).toFixed(2) : "0") + ")";
    });
    var week = document.getElementById("audience-week");
    if (week) week.textContent = data.week_start;
    var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    var start = new Date(data.week_start + "T00:00:00Z");
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      var day = new Date(start.getTime() + (+tr.dataset.weekday) * 86400000);
      var label = tr.querySelector(".audience-date");
      if (label) label.textContent = pad(day.getUTCDate()) + " " + MONTHS[day.getUTCMonth()];
    });
  }

  function update() {
    if (!sameZone) return;  // the form's times are in another zone than the heatmap's
    var slot = typed();
    if (slot && slot.week !== table.dataset.weekStart) {
      fetch(table.dataset.api + "?week=" + slot.week, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) { paint(data); } mark(typed()); })
        .catch(function () { mark(typed()); });
      return;
    }
    mark(slot);
  }

  [dateInput, timeInput].forEach(function (input) {
    if (!input) return;
    input.addEventListener("input", update);
    input.addEventListener("change", update);
  });
  // The admin's calendar and clock pickers set the value without an input event.
  document.addEventListener("click", function () { setTimeout(update, 0); });
  update();
})();
