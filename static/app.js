// Storefront page script: connection badge, pushed fragments, live regions.
// Pushed messages are HTML fragments with ids: an element on the page with the same id is
// replaced; a new one (e.g. a product just created) goes where data-insert-into points.
(function () {
  "use strict";

  function setState(state) {
    document.body.setAttribute("data-ws", state);
    var badge = document.getElementById("ws-badge");
    if (badge) {
      badge.setAttribute("data-state", state);
      badge.textContent = state === "open" ? "live" : "reconnecting…";
    }
  }

  function refreshLiveRegions() {
    document.querySelectorAll("[data-live-region]").forEach(function (el) {
      htmx.trigger(el, "sf:refresh");
    });
  }

  function apply(el) {
    if (!el.id) return;
    var current = document.getElementById(el.id);
    if (current) {
      current.replaceWith(el);
      htmx.process(el);
      return;
    }
    var into = el.getAttribute("data-insert-into");
    var container = into && document.querySelector(into);
    if (container) {
      container.insertAdjacentElement(el.getAttribute("data-insert-at") || "beforeend", el);
      htmx.process(el);
    }
  }

  document.addEventListener("htmx:wsConnecting", function () {
    if (document.body.getAttribute("data-ws") === "open") setState("connecting");
  });
  document.addEventListener("htmx:wsOpen", function () {
    setState("open");
    refreshLiveRegions();
  });
  document.addEventListener("htmx:wsClose", function () { setState("closed"); });
  document.addEventListener("htmx:wsError", function () { setState("closed"); });

  document.addEventListener("htmx:wsBeforeMessage", function (evt) {
    evt.preventDefault();
    var template = document.createElement("template");
    template.innerHTML = evt.detail.message;
    Array.prototype.slice.call(template.content.children).forEach(apply);
  });

  // After a form post, focus the first field that has an error.
  document.addEventListener("htmx:afterSwap", function (evt) {
    var invalid = evt.detail.target && evt.detail.target.querySelector &&
      evt.detail.target.querySelector("[aria-invalid=true]");
    if (invalid) invalid.focus();
  });
})();
