"""The development sign-in, served by devhost only (never part of the Function App): a user name in, a token out.

`GET /dev/sign-in` is a small page with a form; `POST /dev/sign-in` with `{"user": NAME, "admin": false}` answers
`{"access_token", "token_type", "expires_in", "user"}`, a token signed with the development key for the issuer and
audience the app is configured with. The page keeps it in the tab's sessionStorage under `simgate.devToken` (the UI
reads it there; it is never put in a URL) and returns to `?return=` (a `/ui/` path) or `/ui/`.

Anybody who can reach devhost can sign in as anybody: devhost listens on loopback and exists for development.
The POST takes JSON only, so another site's form cannot mint a token (a cross-origin JSON post needs CORS, which
devhost never grants). The key is `DEVHOST_SIGNING_KEY`, else the checkout's `.local/keys/dev-signing.pem`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import azure.functions as func

from devhost.tokens import DEV_AUDIENCE, DEV_ISSUER, SIGNING_KEY, mint

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

KEY_SETTING = "DEVHOST_SIGNING_KEY"
CHECKOUT = Path(__file__).resolve().parent.parent
TOKEN_HOURS = 8
USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


@app.function_name("dev_sign_in_page")
@app.route(route="dev/sign-in", methods=["GET"])
def dev_sign_in_page(req: func.HttpRequest) -> func.HttpResponse:
    """The sign-in form."""
    return func.HttpResponse(
        PAGE,
        mimetype="text/html",
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src data:; frame-ancestors 'none'; form-action 'self'",
        },
    )


@app.function_name("dev_sign_in")
@app.route(route="dev/sign-in", methods=["POST"])
def dev_sign_in(req: func.HttpRequest) -> func.HttpResponse:
    """A development token for the user named in the JSON body."""
    if (req.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
        return _answer(415, {"title": "Unsupported media type", "detail": "send application/json"})
    try:
        body = json.loads(req.get_body() or b"null")
    except ValueError:
        body = None
    user = body.get("user") if isinstance(body, dict) else None
    if not isinstance(user, str) or not USER.fullmatch(user):
        return _answer(
            422,
            {
                "title": "Invalid body",
                "detail": "user: 1 to 64 letters, digits or . _ @ -",
                "errors": [{"name": "user", "in": "body", "detail": "is not a user name"}],
            },
        )
    # A JSON boolean only: bool() would make the strings "false" and "0" admins.
    admin = body.get("admin", False)  # body is a dict: the user check above needs one
    if not isinstance(admin, bool):
        return _answer(
            422,
            {
                "title": "Invalid body",
                "detail": "admin: must be true or false (a JSON boolean)",
                "errors": [{"name": "admin", "in": "body", "detail": "must be true or false"}],
            },
        )
    env = os.environ.get
    token = mint(
        signing_key(),
        user,
        admin=admin,
        ttl_seconds=TOKEN_HOURS * 3600,
        issuer=env("AUTH_ISSUER", DEV_ISSUER),
        audience=env("AUTH_AUDIENCE", DEV_AUDIENCE),
    )
    return _answer(
        200,
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_HOURS * 3600,
            "user": user,
            "admin": admin,
        },
    )


def signing_key() -> Path:
    """The development signing key: the setting's path, else this checkout's."""
    return Path(os.environ.get(KEY_SETTING) or CHECKOUT / SIGNING_KEY)


def _answer(status: int, body: dict[str, object]) -> func.HttpResponse:
    kind = "application/json" if status == 200 else "application/problem+json"
    return func.HttpResponse(
        json.dumps(body),
        status_code=status,
        mimetype=kind,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Development sign-in · simgate</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f6f8; color: #1d2430; }
  main { max-width: 26rem; margin: 10vh auto; background: #fff; padding: 1.5rem 2rem 2rem; border-radius: 12px;
         box-shadow: 0 2px 12px rgb(0 0 0 / 8%); }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
  p { color: #4a5568; margin: 0 0 1.25rem; }
  label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
  input[type=text] { width: 100%; box-sizing: border-box; font: inherit; padding: .55rem .7rem;
                     border: 1px solid #9aa5b1; border-radius: 8px; }
  .check { display: flex; gap: .5rem; align-items: center; font-weight: 400; }
  button { margin-top: 1.25rem; font: inherit; font-weight: 600; padding: .6rem 1.2rem; border: 0;
           border-radius: 8px; background: #1f5fbf; color: #fff; cursor: pointer; }
  :focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
  [role=alert] { color: #b42318; margin-top: 1rem; }
</style>
</head>
<body>
<main>
  <h1>Development sign-in</h1>
  <p>devhost only: any name signs in, with a token from the local development key. In Azure, users sign in with
     Microsoft Entra ID.</p>
  <form id="form" novalidate>
    <label for="user">User name</label>
    <input id="user" name="user" type="text" autocomplete="username" required autofocus
           pattern="[A-Za-z0-9][A-Za-z0-9._@-]{0,63}" aria-describedby="problem">
    <label class="check"><input id="admin" type="checkbox"> Administrator (sees everyone's jobs)</label>
    <button type="submit">Sign in</button>
    <div id="problem" role="alert"></div>
  </form>
</main>
<script>
  const form = document.getElementById("form");
  const problem = document.getElementById("problem");
  const target = new URLSearchParams(location.search).get("return") || "/ui/";
  const back = /^\\/ui\\/[^\\\\]*$/.test(target) && !target.startsWith("//") ? target : "/ui/";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    const user = document.getElementById("user").value.trim();
    const admin = document.getElementById("admin").checked;
    const resp = await fetch(location.pathname, {method: "POST", headers: {"Content-Type": "application/json"},
                                                 body: JSON.stringify({user, admin})});
    const body = await resp.json();
    if (!resp.ok) { problem.textContent = body.detail || "Sign-in failed"; return; }
    const expires_at = Date.now() + body.expires_in * 1000;
    sessionStorage.setItem("simgate.devToken", JSON.stringify({token: body.access_token, user: body.user,
                                                               admin: body.admin, expires_at}));
    location.replace(back);
  });
</script>
</body>
</html>
"""
