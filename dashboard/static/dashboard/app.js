// PromptMetrics dashboard: draws the Plotly figures the server built, asks before destructive
// submits, copies code blocks, submits the workspace switcher on change. No framework.
"use strict";

(function () {
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function drawCharts() {
    if (!window.Plotly) return;
    document.querySelectorAll(".chart-plot[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.dataset.figure);
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      var layout = Object.assign({}, figure.layout || {});
      layout.paper_bgcolor = "rgba(0,0,0,0)";
      layout.plot_bgcolor = "rgba(0,0,0,0)";
      layout.font = Object.assign({ color: cssVar("--text"), family: cssVar("--font") }, layout.font || {});
      ["xaxis", "yaxis", "yaxis2"].forEach(function (axis) {
        if (layout[axis]) layout[axis] = Object.assign({ gridcolor: cssVar("--border"), zerolinecolor: cssVar("--border") }, layout[axis]);
      });
      window.Plotly.newPlot(el, figure.data || [], layout, { displaylogo: false, responsive: true });
      if (figure.onclick === "select-span") {
        el.on("plotly_click", function (event) {
          var point = event.points && event.points[0];
          if (point && point.customdata) document.dispatchEvent(new CustomEvent("pm:select-span", { detail: point.customdata[0] }));
        });
      }
    });
  }

  function confirmDialog() {
    var dialog = document.createElement("dialog");
    dialog.id = "confirm-dialog";
    dialog.innerHTML =
      '<form method="dialog"><p class="confirm-message"></p><div class="dialog-actions">' +
      '<button value="cancel" class="secondary">Cancel</button>' +
      '<button value="confirm" class="confirm-button">Confirm</button></div></form>';
    document.body.appendChild(dialog);
    return dialog;
  }

  function guardDestructiveForms() {
    var dialog = null;
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.confirmed === "yes") return;
        event.preventDefault();
        dialog = dialog || confirmDialog();
        dialog.querySelector(".confirm-message").textContent = form.dataset.confirm;
        dialog.returnValue = "";
        dialog.onclose = function () {
          if (dialog.returnValue !== "confirm") return;
          form.dataset.confirmed = "yes";
          form.requestSubmit(event.submitter || undefined);
        };
        dialog.showModal();
      });
    });
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (block) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary small copy";
      button.textContent = "Copy";
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(block.textContent.trim()).then(function () {
          button.textContent = "Copied";
        }, function () {
          button.textContent = "Select and copy";
        });
      });
      block.insertAdjacentElement("afterend", button);
    });
  }

  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.requestSubmit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    guardDestructiveForms();
    copyButtons();
    autosubmit();
  });
})();
