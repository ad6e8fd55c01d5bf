// Small enhancements; every page works without them.
// Live refresh: a page marked data-refresh reloads its main part every few seconds.
(function () {
  "use strict";
  var main = document.querySelector("[data-refresh]");
  if (!main) { return; }
  var every = Number(main.getAttribute("data-refresh")) * 1000 || 5000;
  setInterval(function () {
    if (document.hidden) { return; }
    fetch(location.href, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) { return; }
      var next = new DOMParser().parseFromString(html, "text/html").querySelector("[data-refresh]");
      if (next) { main.replaceWith(next); main = next; }
    }).catch(function () {});
  }, every);
})();
