// The browser's IANA time zone, for the account pages: signup sends it in the hidden
// time_zone field; the time zone page offers it as a one-click choice.
(() => {
  let zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return;
  }
  if (!zone) return;
  for (const input of document.querySelectorAll('input[type=hidden][name=time_zone]')) {
    if (!input.value) input.value = zone;
  }
  const select = document.querySelector("select[name=time_zone]");
  const hint = document.querySelector("[data-browser-zone]");
  const button = document.querySelector("[data-use-browser-zone]");
  if (!select || !hint || !button || select.value === zone) return;
  if (![...select.options].some((option) => option.value === zone)) return;
  button.textContent = zone.replaceAll("_", " ");
  button.addEventListener("click", () => {
    select.value = zone;
  });
  hint.hidden = false;
})();
