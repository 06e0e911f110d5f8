// flaskstack's passkeys: the "Add a passkey" form of the passkeys page and the
// "Sign in with a passkey" button of the sign-in page.
//
// Everything the script needs is in data-* attributes of #flaskstack-passkey-register
// and #flaskstack-passkey-login (endpoint URLs, the page's CSRF token), so the pages
// have no inline script and run under a Content-Security-Policy of script-src 'self'.
// Each ceremony asks the app for options, hands them to the browser, and sends the
// browser's answer back, with the CSRF token in X-CSRFToken; a refusal is shown in the
// element with role="alert" next to the control, as the problem's detail.
(function () {
  "use strict";

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) {
      return null;
    }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i += 1) {
      binary += String.fromCharCode(bytes[i]);
    }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(descriptors) {
    return (descriptors || []).map(function (descriptor) {
      return Object.assign({}, descriptor, { id: toBytes(descriptor.id) });
    });
  }

  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      user: Object.assign({}, json.user, { id: toBytes(json.user.id) }),
      excludeCredentials: withIds(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    return Object.assign({}, json, {
      challenge: toBytes(json.challenge),
      allowCredentials: withIds(json.allowCredentials),
    });
  }

  function registrationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      response: {
        clientDataJSON: toText(response.clientDataJSON),
        attestationObject: toText(response.attestationObject),
        transports: response.getTransports ? response.getTransports() : [],
      },
    };
  }

  function authenticationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      response: {
        clientDataJSON: toText(response.clientDataJSON),
        authenticatorData: toText(response.authenticatorData),
        signature: toText(response.signature),
        userHandle: toText(response.userHandle),
      },
    };
  }

  // POST JSON on the session cookie; resolves with the body, rejects with the
  // problem's detail (and the messages of its fields) for people to read.
  function post(url, token, body) {
    return window
      .fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": token,
        },
        body: JSON.stringify(body || {}),
      })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (document) {
            if (response.ok) {
              return document;
            }
            var messages = [];
            Object.keys(document.errors || {}).forEach(function (field) {
              messages = messages.concat(document.errors[field]);
            });
            var detail = document.detail || "The request failed (" + response.status + ").";
            throw new Error(messages.length ? messages.join(" ") : detail);
          });
      });
  }

  function browserRefusal(error) {
    if (error && error.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out: try again.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This device already holds one of your passkeys.";
    }
    return (error && error.message) || "The passkey request failed.";
  }

  function supported() {
    return Boolean(window.PublicKeyCredential && navigator.credentials);
  }

  function setUpRegistration(form) {
    var input = form.querySelector("input[name=name]");
    var alert = form.querySelector("[role=alert]");
    var button = form.querySelector("button[type=submit]");
    var data = form.dataset;

    function fail(message) {
      alert.textContent = message;
      input.setAttribute("aria-invalid", "true");
      button.disabled = false;
    }

    if (!supported()) {
      fail("This browser cannot make passkeys.");
      button.disabled = true;
      return;
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var name = input.value.trim();
      alert.textContent = "";
      input.removeAttribute("aria-invalid");
      if (!name) {
        fail("Give the passkey a name.");
        input.focus();
        return;
      }
      button.disabled = true;
      post(data.optionsUrl, data.csrfToken)
        .then(function (options) {
          return navigator.credentials
            .create({ publicKey: creationOptions(options.publicKey) })
            .catch(function (error) {
              throw new Error(browserRefusal(error));
            });
        })
        .then(function (credential) {
          return post(data.registerUrl, data.csrfToken, {
            name: name,
            credential: registrationJSON(credential),
          });
        })
        .then(function () {
          window.location.assign(data.doneUrl);
        })
        .catch(function (error) {
          fail(error.message);
          input.focus();
        });
    });
  }

  function setUpSignIn(section) {
    var button = section.querySelector("button");
    var alert = section.querySelector("[role=alert]");
    var data = section.dataset;

    if (!supported()) {
      section.hidden = true;
      return;
    }
    button.addEventListener("click", function () {
      var remember = document.getElementById("remember");
      alert.textContent = "";
      button.disabled = true;
      post(data.optionsUrl, data.csrfToken)
        .then(function (options) {
          return navigator.credentials
            .get({ publicKey: requestOptions(options.publicKey) })
            .catch(function (error) {
              throw new Error(browserRefusal(error));
            });
        })
        .then(function (credential) {
          return post(data.loginUrl, data.csrfToken, {
            credential: authenticationJSON(credential),
            remember: Boolean(remember && remember.checked),
            next: data.next || null,
          });
        })
        .then(function (answer) {
          window.location.assign(answer.next);
        })
        .catch(function (error) {
          alert.textContent = error.message;
          button.disabled = false;
        });
    });
  }

  var form = document.getElementById("flaskstack-passkey-register");
  if (form) {
    setUpRegistration(form);
  }
  var section = document.getElementById("flaskstack-passkey-login");
  if (section) {
    setUpSignIn(section);
  }
})();
