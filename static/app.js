// Storefront page script: connection badge, pushed fragments, live regions.
// Pushed messages hold HTML fragments with ids (several, when they came together): an element
// on the page with the same id is replaced; a new one (e.g. a product just created) goes where
// data-insert-into points; one that has no place yet (a command status whose form answer is
// still on its way) is kept for a minute and applied as soon as its element appears.
(function () {
  "use strict";

  var FINAL = { succeeded: true, failed: true };
  var KEEP_MS = 60000;
  var waiting = {};

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

  // A command's status never goes back from an outcome to "Processing…".
  function wouldRegress(current, next) {
    return current.hasAttribute("data-command-id") &&
      FINAL[current.getAttribute("data-status")] &&
      !FINAL[next.getAttribute("data-status")];
  }

  // Keep what the user is typing (and where) when a live row is replaced under them.
  // Returns the new element that should take the focus, if any.
  function carryInput(current, next) {
    var focus = null;
    current.querySelectorAll("input[name], textarea[name]").forEach(function (input) {
      var focused = document.activeElement === input;
      if (input.value === input.defaultValue && !focused) return;
      var twin = next.querySelector('[name="' + input.name + '"]');
      if (!twin) return;
      twin.value = input.value;
      if (focused) focus = twin;
    });
    return focus;
  }

  function apply(el) {
    if (!el.id) return;
    var current = document.getElementById(el.id);
    if (current) {
      // unchanged (e.g. the status page's console, pushed every second): leave it be, so a
      // form in it keeps its state and a click in flight its element
      if (wouldRegress(current, el) || current.isEqualNode(el)) return;
      var focus = carryInput(current, el);
      current.replaceWith(el);
      htmx.process(el);
      if (focus) focus.focus();
      delete waiting[el.id];
      return;
    }
    var into = el.getAttribute("data-insert-into");
    var container = into && document.querySelector(into);
    if (container) {
      container.insertAdjacentElement(el.getAttribute("data-insert-at") || "beforeend", el);
      htmx.process(el);
    } else if (el.hasAttribute("data-command-id")) {
      waiting[el.id] = { el: el, at: Date.now() };
    }
  }

  function applyWaiting() {
    var now = Date.now();
    Object.keys(waiting).forEach(function (id) {
      var entry = waiting[id];
      if (now - entry.at > KEEP_MS) {
        delete waiting[id];
      } else if (document.getElementById(id)) {
        delete waiting[id];
        apply(entry.el);
      }
    });
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

  // A message holds one or more fragments, each in its own <template> (parsed on its own:
  // a table row next to a div or a section would otherwise be broken by the HTML parser).
  function applyAll(fragment) {
    Array.prototype.slice.call(fragment.children).forEach(function (el) {
      if (el.tagName === "TEMPLATE") {
        applyAll(el.content);
      } else {
        apply(el);
      }
    });
  }

  document.addEventListener("htmx:wsBeforeMessage", function (evt) {
    evt.preventDefault();
    var template = document.createElement("template");
    template.innerHTML = evt.detail.message;
    applyAll(template.content);
  });

  document.addEventListener("htmx:afterSettle", applyWaiting);

  // After a form post, focus the first field that has an error.
  document.addEventListener("htmx:afterSwap", function (evt) {
    var swapped = evt.target;
    var invalid = swapped && swapped.isConnected && swapped.querySelector &&
      swapped.querySelector("[aria-invalid=true]");
    if (invalid) invalid.focus();
  });
})();
