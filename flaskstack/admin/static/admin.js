// flaskstack's admin: what Flask-Admin's list page does with inline handlers, which the
// app's Content-Security-Policy blocks: bulk actions, confirmation before deleting a row,
// and links that only open a menu or mark where the user is.
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
    var action = event.target.closest("[data-flaskstack-action]");
    if (action) {
      event.preventDefault();
      window.modelActions.execute(action.getAttribute("data-flaskstack-action"));
      return;
    }
    if (event.target.closest("[data-flaskstack-inert]")) {
      event.preventDefault();
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-flaskstack-confirm]");
    if (form && !window.confirm(form.getAttribute("data-flaskstack-confirm"))) {
      event.preventDefault();
    }
  });
})();
