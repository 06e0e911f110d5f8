// A single-page client of the Conduit API on another origin.
//
// The API's address comes from the page's query string (?api=http://host:port).
// It signs up (a token) or uses the app's session cookie (credentials: "include",
// with the CSRF token from GET /csrf-token in X-CSRFToken), then publishes, edits
// and deletes an article. What happens is written into the page.

const api = new URLSearchParams(window.location.search).get("api");
const $ = (id) => document.getElementById(id);

let auth = null; // {kind: "token", token} or {kind: "session", csrf}
let article = null; // {slug, title}

function show(text) {
  $("status").textContent = text;
  const item = document.createElement("li");
  item.textContent = text;
  $("log").append(item);
}

async function call(method, path, body, {csrf = true} = {}) {
  const headers = {Accept: "application/json"};
  const init = {method, headers};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (auth?.kind === "token") {
    headers.Authorization = `Token ${auth.token}`;
  } else if (auth?.kind === "session") {
    init.credentials = "include";
    if (csrf && method !== "GET") headers["X-CSRFToken"] = auth.csrf;
  }
  const response = await fetch(api + path, init);
  $("request-id").textContent = `Request id: ${response.headers.get("X-Request-ID") ?? "not readable"}`;
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    throw new Error(`${response.status} ${data?.detail ?? data?.title ?? ""}`.trim());
  }
  return data;
}

function action(id, run) {
  $(id).addEventListener("click", async () => {
    show("Working…");
    try {
      show(await run());
    } catch (error) {
      show(`Failed: ${error.name}: ${error.message}`);
    }
  });
}

action("sign-up", async () => {
  const user = {username: $("username").value, email: $("email").value, password: $("password").value};
  const data = await call("POST", "/api/users", {user});
  auth = {kind: "token", token: data.user.token};
  return `Signed up as ${data.user.username}.`;
});

action("use-session", async () => {
  const token = await fetch(`${api}/csrf-token`, {credentials: "include"});
  if (!token.ok) throw new Error(`${token.status} from /csrf-token`);
  auth = {kind: "session", csrf: (await token.json()).csrf_token};
  const data = await call("GET", "/api/user");
  return `Signed in with the session as ${data.user.username}.`;
});

function publish(options) {
  return async () => {
    const body = {article: {title: $("title").value, description: "From another origin", body: $("body").value, tagList: []}};
    const data = await call("POST", "/api/articles", body, options);
    article = {slug: data.article.slug, title: data.article.title};
    return `Published “${data.article.title}” by ${data.article.author.username}.`;
  };
}

action("publish", publish());
action("publish-without-csrf", publish({csrf: false}));

action("save", async () => {
  const data = await call("PUT", `/api/articles/${article.slug}`, {article: {body: $("body").value}});
  return `Saved “${data.article.title}”: ${data.article.body}`;
});

action("delete", async () => {
  await call("DELETE", `/api/articles/${article.slug}`);
  return `Deleted “${article.title}”.`;
});
