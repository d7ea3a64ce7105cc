// The page's chrome: the phone menu, and refusals as readable messages.
// (app.js is the live machinery: the socket, pushed fragments, live regions.)
(function () {
  "use strict";

  // --- The menu: on a narrow screen the nav folds behind a button (without JavaScript it
  // stays open and wraps).
  var toggle = document.querySelector(".menu-toggle");
  var header = toggle && toggle.closest("header");

  function setMenu(open) {
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    header.setAttribute("data-menu", open ? "open" : "closed");
  }

  if (toggle && header) {
    setMenu(false);
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      setMenu(toggle.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (evt) {
      if (evt.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        setMenu(false);
        toggle.focus();
      }
    });
  }

  // --- Refusals: an action answered with a problem (application/problem+json: not signed in,
  // not allowed, too many requests…) says so beside the control, in words, instead of
  // swapping the JSON into the page.
  function problemOf(xhr) {
    var type = (xhr && xhr.getResponseHeader("Content-Type")) || "";
    if (xhr.status < 400 || type.indexOf("json") < 0) return null;
    try {
      var body = JSON.parse(xhr.responseText);
      return body && typeof body === "object" ? body : {};
    } catch (e) {
      return {};
    }
  }

  function message(problem, status) {
    var box = document.createElement("p");
    box.className = "error refusal";
    box.setAttribute("role", "alert");
    box.setAttribute("data-error-code", problem.code || String(status));
    var title = problem.title || "The action was refused";
    box.textContent = problem.detail ? title + ": " + problem.detail : title + ".";
    if (status === 401) {
      var again = document.createElement("a");
      again.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      again.textContent = "Sign in again";
      box.appendChild(document.createTextNode(" "));
      box.appendChild(again);
    }
    return box;
  }

  function placeBeside(elt, box) {
    var form = elt && elt.closest ? elt.closest("form") || elt : null;
    if (!form || !form.isConnected || form === document.body) {
      var flash = document.getElementById("flash");
      if (!flash) return;
      flash.replaceChildren(box);
      return;
    }
    var next = form.nextElementSibling;
    if (next && next.classList.contains("refusal")) next.remove();
    form.insertAdjacentElement("afterend", box);
  }

  document.addEventListener("htmx:beforeSwap", function (evt) {
    var problem = problemOf(evt.detail.xhr);
    if (!problem) return;
    evt.detail.shouldSwap = false;
    evt.detail.isError = false;
    var config = evt.detail.requestConfig;
    placeBeside(config && config.elt, message(problem, evt.detail.xhr.status));
  });

  // A control tried again clears what it was told before.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    var form = elt && elt.closest ? elt.closest("form") : null;
    var next = form && form.nextElementSibling;
    if (next && next.classList.contains("refusal")) next.remove();
  });
})();
