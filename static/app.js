// Storefront page script: connection badge, pushed fragments, live regions.
// Pushed messages hold HTML fragments with ids (several, when they came together): an element
// on the page with the same id is replaced; a new one (e.g. a product just created) goes where
// data-insert-into points; one that has no place yet (a command status whose form answer is
// still on its way) is kept for a minute and applied as soon as its element appears.
(function () {
  "use strict";

  // The statuses a command ends in, as the server declares them (data-final-statuses).
  var FINAL = {};
  (document.body.getAttribute("data-final-statuses") || "").split(" ").forEach(function (s) {
    if (s) FINAL[s] = true;
  });
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
      var twin = (input.id && next.querySelector("#" + CSS.escape(input.id))) ||
        next.querySelector('[name="' + input.name + '"]');
      if (!twin) return;
      twin.value = input.value;
      if (focused) focus = twin;
    });
    return focus;
  }

  // The element of `next` that takes the focus `current` holds: the one with the same id (a
  // button: the row's "Add to order"), else `next` itself when it can be focused.
  function focusTwin(current, next) {
    var active = document.activeElement;
    if (!active || !(current === active || current.contains(active))) return null;
    var twin = active.id && active !== current ? next.querySelector("#" + CSS.escape(active.id)) : null;
    if (twin) return twin;
    return next.hasAttribute("tabindex") ? next : null;
  }

  // A list newest first (rows with data-sort, ISO times) takes at its top only what is newer
  // than its first row: an update of an order that is not on this page is not inserted.
  function olderThanTheList(container, el) {
    var first = container.firstElementChild;
    var key = el.getAttribute("data-sort");
    var top = first && first.getAttribute("data-sort");
    return el.getAttribute("data-insert-at") === "afterbegin" && !!key && !!top && key < top;
  }

  function apply(el, receivedAt) {
    if (!el.id) return;
    var current = document.getElementById(el.id);
    if (current) {
      // unchanged (e.g. the status page's console, pushed every second): leave it be, so a
      // form in it keeps its state and a click in flight its element
      if (wouldRegress(current, el) || current.isEqualNode(el)) return;
      var focus = carryInput(current, el) || focusTwin(current, el);
      current.replaceWith(el);
      htmx.process(el);
      if (focus) focus.focus();
      delete waiting[el.id];
      swapped(el, receivedAt);
      return;
    }
    var into = el.getAttribute("data-insert-into");
    var container = into && document.querySelector(into);
    if (container && olderThanTheList(container, el)) return;  // not this page's: a new one is newer
    if (container) {
      container.insertAdjacentElement(el.getAttribute("data-insert-at") || "beforeend", el);
      htmx.process(el);
    } else if (el.hasAttribute("data-command-id")) {
      waiting[el.id] = { el: el, at: Date.now(), received: receivedAt };
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
        apply(entry.el, entry.received);
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
  function applyAll(fragment, receivedAt) {
    Array.prototype.slice.call(fragment.children).forEach(function (el) {
      if (el.tagName === "TEMPLATE") {
        applyAll(el.content, receivedAt);
      } else {
        apply(el, receivedAt);
      }
    });
  }

  document.addEventListener("htmx:wsBeforeMessage", function (evt) {
    var receivedAt = now();
    evt.preventDefault();
    var template = document.createElement("template");
    template.innerHTML = evt.detail.message;
    applyAll(template.content, receivedAt);
    filterDeadLetters();
  });

  document.addEventListener("htmx:afterSettle", function () {
    timeAnswers();  // before the pushed statuses that waited for the answer's element
    applyWaiting();
    filterDeadLetters();
  });

  // --- The dead-letter console's filter -------------------------------------------------
  // Rows that do not match the filter (consumer, event type: exact; error: contains, any
  // case) are hidden as the operator types, and again after every push of the console.
  function filterDeadLetters() {
    var form = document.getElementById("dead-letter-filter");
    if (!form) return;
    function value(id) {
      var input = document.getElementById(id);
      return input ? input.value.trim() : "";
    }
    var consumer = value("dl-filter-consumer");
    var type = value("dl-filter-type");
    var error = value("dl-filter-error").toLowerCase();
    var rows = document.querySelectorAll("tr[data-letter-id]");
    var matching = 0;
    rows.forEach(function (row) {
      var ok = (!consumer || row.getAttribute("data-consumer") === consumer) &&
        (!type || row.getAttribute("data-type") === type) &&
        (!error || (row.getAttribute("data-error") || "").toLowerCase().indexOf(error) >= 0);
      row.hidden = !ok;
      if (ok) matching += 1;
    });
    var count = form.querySelector("[data-field=matching]");
    if (count) {
      count.textContent = consumer || type || error
        ? matching + " of " + rows.length + " shown match" : "";
    }
  }
  document.addEventListener("input", function (evt) {
    if (evt.target.closest && evt.target.closest("#dead-letter-filter")) filterDeadLetters();
  });

  // --- Click to pixel -------------------------------------------------------------------
  // A form posted through htmx starts a trace: its request carries a W3C traceparent whose
  // parent is the click's span. Once the command's final status is on screen, the page
  // reports when the button was pressed, when the request went and its answer came, and when
  // each status (the answer's, then the pushed ones) arrived and was painted; the server
  // adds them to the command's trace (its waterfall, on /commands/<id>).
  var pressedAt = new WeakMap();
  var requests = new WeakMap();
  var traced = {};

  function now() { return performance.timeOrigin + performance.now(); }

  function randomHex(bytes) {
    var values = new Uint8Array(bytes);
    crypto.getRandomValues(values);
    return Array.prototype.map.call(values, function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }

  // The first frame after a change, once it is painted: the pixel.
  function whenPainted(done) {
    requestAnimationFrame(function () { setTimeout(function () { done(now()); }, 0); });
  }

  function actionOf(form) {
    var button = form.querySelector && form.querySelector("button[type=submit]");
    var text = button ? (button.querySelector(".idle") || button).textContent : "";
    return text.replace(/[^A-Za-z0-9 _-]/g, "").trim().slice(0, 40);
  }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
    catch (e) { return ""; }
  }

  // What a status shows: its last step (stock reserved, payment captured…), or its status.
  function shown(el) {
    var steps = el.querySelectorAll("li[data-step]");
    var status = el.getAttribute("data-status");
    return FINAL[status] || !steps.length ? status : steps[steps.length - 1].getAttribute("data-step");
  }

  function swapped(el, receivedAt) {
    var id = el.getAttribute && el.getAttribute("data-command-id");
    var trace = id && traced[id];
    if (!trace || receivedAt === undefined) return;
    var status = el.getAttribute("data-status");
    var step = shown(el);
    whenPainted(function (paintedAt) {
      trace.swaps.push({ status: step, received: receivedAt, painted: paintedAt });
      if (FINAL[status]) report(id);
    });
  }

  function report(id) {
    var trace = traced[id];
    delete traced[id];
    if (!trace || !window.fetch) return;
    fetch("/ui/commands/" + encodeURIComponent(id) + "/timing", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify({
        traceparent: trace.traceparent, action: trace.action, pressed: trace.pressed,
        sent: trace.sent, answered: trace.answered, swaps: trace.swaps.slice(0, 16)
      })
    }).catch(function () {});
  }

  document.addEventListener("submit", function (evt) { pressedAt.set(evt.target, now()); }, true);

  document.addEventListener("htmx:configRequest", function (evt) {
    if (evt.detail.verb !== "post" || !window.crypto || !crypto.getRandomValues) return;
    var elt = evt.detail.elt;
    var form = (elt.closest && elt.closest("form")) || elt;
    var trace = {
      traceparent: "00-" + randomHex(16) + "-" + randomHex(8) + "-01",
      action: actionOf(form), pressed: pressedAt.get(form) || now(), sent: now(), swaps: []
    };
    evt.detail.headers.traceparent = trace.traceparent;
    requests.set(elt, trace);
  });

  // The answer names the command: from now on its statuses are timed until the final one.
  // (On htmx:beforeSwap: its target is still in the page, where a form swapped out is not.)
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var config = evt.detail.requestConfig;
    var elt = config && config.elt;
    var trace = elt && requests.get(elt);
    var xhr = evt.detail.xhr;
    if (!trace || !xhr) return;
    requests.delete(elt);
    trace.answered = now();
    var found = /data-command-id="([^"]+)"[^>]*data-status="([a-z_]+)"/.exec(xhr.responseText || "");
    if (!found) return;
    traced[found[1]] = trace;
    trace.first = found[2];
  });

  function timeAnswers() {
    Object.keys(traced).forEach(function (id) {
      var trace = traced[id];
      if (!trace.first) return;
      var status = trace.first;
      delete trace.first;
      var el = document.getElementById("command-" + id);
      var step = el ? shown(el) : status;
      whenPainted(function (paintedAt) {
        trace.swaps.unshift({ status: step, received: trace.answered, painted: paintedAt });
        if (FINAL[status]) report(id);
      });
    });
  }

  // --- Focus stays where the person was working ----------------------------------------
  // After a form post: the first field that has an error; else the answer's message marked
  // [data-focus] (a confirmation, a refusal: tabindex=-1); else, if the focus fell to <body>
  // (the button was disabled in flight, or replaced), the control that was used, or its
  // replacement (same id).
  var workingOn = new WeakMap();  // a form posting → the control that had the focus

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var config = evt.detail.requestConfig;
    var active = document.activeElement;
    if (!config || config.verb === "get" || !active || active === document.body) return;
    workingOn.set(config.elt, { el: active, id: active.id });
  });

  document.addEventListener("htmx:afterSwap", function (evt) {
    var swapped = evt.target;
    if (!swapped || !swapped.isConnected || !swapped.querySelector) return;
    var invalid = swapped.querySelector("[aria-invalid=true]");
    var message = swapped.matches("[data-focus]") ? swapped : swapped.querySelector("[data-focus]");
    if (invalid) invalid.focus();
    else if (message) message.focus();
  });

  document.addEventListener("htmx:afterSettle", function (evt) {
    var config = evt.detail.requestConfig;
    var was = config && workingOn.get(config.elt);
    if (!was) return;
    workingOn.delete(config.elt);
    setTimeout(function () {  // once the button disabled in flight is enabled again
      var lost = !document.activeElement || document.activeElement === document.body;
      var el = was.el.isConnected ? was.el : was.id && document.getElementById(was.id);
      if (lost && el && !el.disabled) el.focus();
    }, 0);
  });

  // --- Messages can be dismissed ------------------------------------------------------------
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-dismiss]");
    var message = button && button.closest("[data-dismissible]");
    if (message) message.remove();
  });
})();
