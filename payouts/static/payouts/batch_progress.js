// Payout batch progress screen: polls the batch's JSON endpoint and updates the numbers and the bar.
// A static file (no inline script) so it runs under the strict Content-Security-Policy.
(function () {
  "use strict";
  function start() {
    var root = document.getElementById("batch-progress");
    if (!root) { return; }
    var url = root.getAttribute("data-url");
    var bar = document.getElementById("batch-progress-bar");
    function render(data) {
      root.querySelectorAll("[data-field]").forEach(function (el) {
        var key = el.getAttribute("data-field");
        if (Object.prototype.hasOwnProperty.call(data, key)) {
          el.textContent = data[key] === null ? "—" : String(data[key]);
        }
      });
      if (bar) { bar.value = data.percent; bar.textContent = data.percent + "%"; }
      root.setAttribute("data-finished", data.finished ? "true" : "false");
      root.setAttribute("data-status", data.status);
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data) { render(data); }
          if (!data || !data.finished) { window.setTimeout(poll, 1000); }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    if (root.getAttribute("data-finished") !== "true") { window.setTimeout(poll, 500); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
