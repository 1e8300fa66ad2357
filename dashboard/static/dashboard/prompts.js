// Prompt pages: keep the label move's confirmation naming the label and version actually chosen.
"use strict";

(function () {
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-label-move]").forEach(function (form) {
      var label = form.querySelector("[name=label]");
      var version = form.querySelector("[name=version]");
      function current(name) {
        var found = null;
        document.querySelectorAll("tr[data-label]").forEach(function (row) {
          if (row.dataset.label === name) found = row.querySelector("[data-resolves]").textContent.trim();
        });
        return found;
      }
      function update() {
        var name = label.value.trim();
        var from = current(name);
        form.dataset.confirm = from
          ? "Move label " + name + " from " + from + " to " + version.value + "?"
          : "Create label " + name + " at version " + version.value + "?";
      }
      label.addEventListener("input", update);
      version.addEventListener("change", update);
      update();
    });
  });
})();
