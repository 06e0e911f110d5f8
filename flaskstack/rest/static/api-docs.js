// flaskstack's interactive API docs: starts Swagger UI on the page that loads it.
//
// The page carries everything this script needs in data-* attributes of
// #swagger-ui, so it has no inline script and runs under a Content-Security-Policy
// of script-src 'self'.
(function () {
  "use strict";

  var root = document.getElementById("swagger-ui");
  var csrfTokenUrl = root.getAttribute("data-csrf-token-url");
  var UNSAFE_METHODS = ["POST", "PUT", "PATCH", "DELETE"];

  function hasHeader(headers, name) {
    var wanted = name.toLowerCase();
    return Object.keys(headers || {}).some(function (key) {
      return key.toLowerCase() === wanted && headers[key];
    });
  }

  function sameOrigin(url) {
    try {
      return new URL(url, window.location.href).origin === window.location.origin;
    } catch (error) {
      return false;
    }
  }

  // A request that rides the session cookie (no Authorization header) on an
  // unsafe method needs a CSRF token in X-CSRFToken; it is fetched from the
  // app's token endpoint just before the request, so it always matches the
  // current session. Requests to other origins never get it.
  function addCsrfToken(request) {
    if (
      !csrfTokenUrl ||
      UNSAFE_METHODS.indexOf(String(request.method).toUpperCase()) === -1 ||
      !sameOrigin(request.url) ||
      hasHeader(request.headers, "Authorization") ||
      hasHeader(request.headers, "X-CSRFToken")
    ) {
      return request;
    }
    return fetch(csrfTokenUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.ok ? response.json() : {};
      })
      .then(function (body) {
        if (body && body.csrf_token) {
          request.headers = request.headers || {};
          request.headers["X-CSRFToken"] = body.csrf_token;
        }
        return request;
      })
      .catch(function () {
        return request;
      });
  }

  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    deepLinking: true,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    // The validator badge would send the document to validator.swagger.io.
    validatorUrl: null,
    requestInterceptor: addCsrfToken,
  });
})();
