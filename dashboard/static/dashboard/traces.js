// Trace page: selecting a span (a tree link, a parent link or a waterfall bar) shows its panel,
// which the server rendered hidden, and keeps ?span= in the address. Without JS the links reload.
"use strict";

(function () {
  function select(spanId) {
    var found = false;
    document.querySelectorAll(".span-panel[data-span-id]").forEach(function (panel) {
      var match = panel.dataset.spanId === spanId;
      panel.hidden = !match;
      found = found || match;
    });
    if (!found) return false;
    document.querySelectorAll("#span-tree [data-span-link]").forEach(function (link) {
      if (link.dataset.spanLink === spanId) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    });
    var url = new URL(window.location.href);
    url.searchParams.set("span", spanId);
    window.history.replaceState(null, "", url);
    return true;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-span-link]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    if (select(link.dataset.spanLink)) event.preventDefault();
  });

  document.addEventListener("pm:select-span", function (event) {
    if (select(event.detail)) {
      var current = document.querySelector('#span-tree [aria-current="true"]');
      if (current) current.scrollIntoView({ block: "nearest" });
    }
  });
})();
