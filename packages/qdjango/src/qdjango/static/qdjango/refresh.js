// The Queue page refreshes its live part every few seconds (data-refresh), unless dead letters
// are selected (a selection is never thrown away) or the tab is hidden; the charts reload too.
(function () {
  "use strict";
  function start() {
    var live = document.getElementById("q-live");
    if (!live) { return; }
    var every = parseFloat(live.getAttribute("data-refresh") || "5") * 1000;
    var url = live.getAttribute("data-url");
    var stamp = document.getElementById("q-refreshed");
    function busy() {
      return document.hidden || live.querySelector("input[type=checkbox]:checked") !== null;
    }
    function tick() {
      if (busy()) { return; }
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          if (busy()) { return; }
          live.innerHTML = html;
          if (stamp) { stamp.textContent = new Date().toLocaleString(); }
          document.querySelectorAll("img.q-chart").forEach(function (img) {
            img.src = img.src.split("?")[0] + "?t=" + Date.now();
          });
        })
        .catch(function () { /* the next tick tries again */ });
    }
    window.setInterval(tick, every);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
