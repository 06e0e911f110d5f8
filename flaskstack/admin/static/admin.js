// flaskstack's admin: what Flask-Admin's pages do with inline handlers and scripts, which the
// app's Content-Security-Policy blocks: bulk actions, confirmation before deleting a row,
// adding an inline form, setting up a modal's fields, and links that only open a menu or
// mark where the user is.
(function () {
  "use strict";
  // Flask-Admin's links that only open a menu or mark the current tab or page have
  // href="javascript:void(0)", which the policy refuses to run when clicked.
  function inert() {
    document.querySelectorAll("a[href^='javascript:']").forEach(function (link) {
      link.setAttribute("href", "#");
      link.setAttribute("data-flaskstack-inert", "");
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", inert);
  } else {
    inert();
  }
  document.addEventListener("click", function (event) {
    var inline = event.target.closest("[data-flaskstack-inline]");
    if (inline) {
      event.preventDefault();
      window.faForm.addInlineField(inline, inline.getAttribute("data-flaskstack-inline"));
      return;
    }
    var action = event.target.closest("[data-flaskstack-action]");
    if (action) {
      event.preventDefault();
      window.modelActions.execute(action.getAttribute("data-flaskstack-action"));
      return;
    }
    // Also the links of forms added to the page after it loaded (inline forms).
    if (event.target.closest("[data-flaskstack-inert], a[href^='javascript:']")) {
      event.preventDefault();
    }
  });
  // A modal's content comes with its own response, whose inline script the page's nonce
  // does not cover (flaskstack's modal templates leave it out): do its work here.
  function watchModals() {
    document.querySelectorAll(".modal-content").forEach(function (content) {
      new MutationObserver(function () {
        if (content.firstElementChild && window.faForm) {
          window.faForm.applyGlobalStyles(content);
        }
      }).observe(content, { childList: true });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", watchModals);
  } else {
    watchModals();
  }
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-flaskstack-confirm]");
    if (form && !window.confirm(form.getAttribute("data-flaskstack-confirm"))) {
      event.preventDefault();
    }
  });
})();
