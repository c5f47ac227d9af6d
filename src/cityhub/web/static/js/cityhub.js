/* cityhub page helpers (progressive enhancement: every page works without them).
 *
 * [data-countdown="<seconds>"]  counts down as m:ss; at zero it gets the class "expired", shows
 *                                data-expired-text and sends a bubbling "cardexpired" event (htmx refreshes).
 * form[data-confirm="<question>"] asks before submitting.
 */
(function () {
  "use strict";

  function format(seconds) {
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (element) {
      if (!element.dataset.deadline) {
        element.dataset.deadline = String(now + Number(element.dataset.countdown) * 1000);
      }
      var remaining = Math.max(0, Math.round((Number(element.dataset.deadline) - now) / 1000));
      if (remaining > 0) {
        element.textContent = format(remaining);
        return;
      }
      if (!element.classList.contains("expired")) {
        element.classList.add("expired");
        element.textContent = element.dataset.expiredText || format(0);
        element.dispatchEvent(new CustomEvent("cardexpired", { bubbles: true }));
      }
    });
  }

  document.addEventListener("submit", function (event) {
    var question = event.target.dataset ? event.target.dataset.confirm : null;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  tick();
  window.setInterval(tick, 1000);
})();
