"""The browser UI: its built files under `/ui/`, its sign-in settings at `/ui/config.json`, and `/` sent to `/ui/`.

The files are `ui/dist/`, built from `ui/src/` at set-up (`node ui/build.mjs`) and shipped in the deployment
package. Bundles carry a content hash in their names (`assets/app-3F2K...js`), so they are cached for a year;
everything else (`index.html`, the sign-in bridge, config) is revalidated on every load (`no-cache` with an ETag),
so a deployment shows at once. A path under `/ui/` that names no file and has no extension is a page of the app
(`/ui/job/<id>`): it gets `index.html`, whose script routes it. Paths are matched against a strict pattern before
they touch the file system, and must resolve inside `ui/dist/`.

`/` redirects with a route that matches only the empty path, `{root:maxlength(0)?}`: the Functions host maps an
empty route template to the function's name (azure-functions-host's `WebScriptHostHttpRoutesManager`), and its
home page answers `/` only when no function did (`HomepageMiddleware`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from blueprints._contract import Call, operation
from core.errors import NotFound

bp = func.Blueprint()

DIST = Path(__file__).resolve().parent.parent / "ui" / "dist"
INDEX = "index.html"
# A name a build writes: letters, digits, "-", "_" and "."; never hidden, never "..".
SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
HASHED = re.compile(
    r"^assets/.+-[A-Z0-9]{8}\.(js|css|map)$"
)  # esbuild's [hash]: 8 upper-case base32 characters
SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
ENTRA = "https://login.microsoftonline.com"


@operation(bp, "GET", "{root:maxlength(0)?}", auth="none", ok={302: None}, documented=False)
def ui_root(call: Call) -> func.HttpResponse:
    """The site root: 302 to the UI."""
    return _redirect("/ui/")


# `ui/config.json` is also a match of `ui/{*path}` below. The Functions host orders routes of equal precedence by
# function name (`devhost.routing` cites its source), so `ui_config` wins only because it sorts before `ui_files`:
# keep the names so, and `tests/deploy/test_routes.py` checks that no route is shadowed.
@operation(bp, "GET", "ui/config.json", auth="none", ok={200: None}, documented=False)
def ui_config(call: Call) -> func.HttpResponse:
    """How the page signs users in: Entra ID through MSAL when AUTH_UI_CLIENT_ID is set, else devhost's page."""
    body = json.dumps({"auth": auth_config(os.environ)})
    return func.HttpResponse(
        body, mimetype="application/json", headers={"Cache-Control": REVALIDATE, **SECURITY}
    )


# Matches `ui/config.json` too: see `ui_config` above for why that one still answers it.
@operation(
    bp,
    "GET",
    "ui/{*path}",
    auth="none",
    ok={200: None, 304: None},
    errors=(NotFound,),
    documented=False,
)
def ui_files(call: Call) -> func.HttpResponse:
    """A file of the built UI; `index.html` for the app's own pages; 404 for anything else."""
    req = call.req
    path = call.path("path")
    if not path and not urlsplit(req.url).path.endswith("/"):
        return _redirect("/ui/")  # `/ui` → `/ui/`, so the page's relative URLs resolve under it
    relative = resolve(DIST, path)
    if relative is None:
        return func.HttpResponse(
            "not found", status_code=404, mimetype="text/plain", headers=SECURITY
        )
    return _file(relative, req.headers.get("If-None-Match"))


def resolve(root: Path, path: str) -> str | None:
    """The file under `root` that `path` names (relative, "/"-separated), `index.html` for an app page, or None."""
    if not path:
        return INDEX
    parts = path.split("/")
    if not all(SEGMENT.fullmatch(p) and ".." not in p for p in parts):
        return None
    if _is_file(root, path):
        return path
    return INDEX if "." not in parts[-1] else None


def _is_file(root: Path, relative: str) -> bool:
    target = (root / relative).resolve()
    return target.is_relative_to(root.resolve()) and target.is_file()


def _file(relative: str, if_none_match: str | None) -> func.HttpResponse:
    path = DIST / relative
    stat = path.stat()
    body, etag = _read(path, stat.st_mtime_ns, stat.st_size)
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE if HASHED.match(relative) else REVALIDATE,
        **SECURITY,
    }
    if relative.endswith(".html"):
        headers["Content-Security-Policy"] = content_security_policy(os.environ)
    if if_none_match and etag in (t.strip() for t in if_none_match.split(",")):
        return func.HttpResponse(status_code=304, headers=headers)
    content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    return func.HttpResponse(body, headers={"Content-Type": content_type, **headers})


@functools.lru_cache(maxsize=64)
def _read(path: Path, mtime_ns: int, size: int) -> tuple[bytes, str]:
    """A file's bytes and strong ETag, cached until it changes (a rebuild while devhost runs is seen)."""
    body = path.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _redirect(location: str) -> func.HttpResponse:
    return func.HttpResponse(
        status_code=302, headers={"Location": location, "Cache-Control": REVALIDATE}
    )


def auth_config(env: Any) -> dict[str, Any]:
    """The page's sign-in settings from app settings; nothing secret (a SPA's client id is public)."""
    client_id = env.get("AUTH_UI_CLIENT_ID", "").strip()
    if not client_id:
        return {"mode": "dev", "sign_in": "/dev/sign-in"}
    return {
        "mode": "msal",
        "client_id": client_id,
        "authority": _authority(env),
        "scopes": [_scope(env)],
        "redirect_path": "/ui/auth.html",
    }


def _authority(env: Any) -> str:
    """AUTH_UI_AUTHORITY, else the Entra v2.0 issuer without its "/v2.0" (the tenant's authority)."""
    explicit = env.get("AUTH_UI_AUTHORITY", "").strip().rstrip("/")
    if explicit:
        return str(explicit)
    issuer = env.get("AUTH_ISSUER", "").strip().rstrip("/")
    return (
        str(issuer.removesuffix("/v2.0")) if issuer.startswith(ENTRA) else f"{ENTRA}/organizations"
    )


def _scope(env: Any) -> str:
    """AUTH_UI_SCOPE, else the API's `.default` scope (its audience, as tokens must carry it)."""
    explicit = env.get("AUTH_UI_SCOPE", "").strip()
    return str(explicit) if explicit else f"{env.get('AUTH_AUDIENCE', '').strip()}/.default"


def content_security_policy(env: Any) -> str:
    """Scripts and styles from the UI's own files only; API calls same-origin, downloads and sign-in over HTTPS."""
    authority = auth_config(env).get("authority")
    frames = urlsplit(authority)._replace(path="").geturl() if authority else "'none'"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self' https:",
            f"frame-src {frames}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
