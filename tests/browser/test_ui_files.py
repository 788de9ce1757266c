"""How the Function App serves the UI, checked without a browser: routes as the host matches them, content types and
caching, app pages, 404s, path traversal, the sign-in settings; and devhost's development sign-in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.functions as func
import jwt
import pytest

import function_app
from blueprints import ui
from devhost import signin
from devhost.routing import NOT_FOUND, RouteTable, index_functions
from devhost.tokens import DEV_AUDIENCE, DEV_ISSUER, make_key_pair
from tests.conftest import _missing_component

ROUTES = RouteTable(index_functions(function_app.app), prefix="")
SIGN_IN = RouteTable(index_functions(signin.app), prefix="")


def get(
    path: str,
    headers: dict[str, str] | None = None,
    table: RouteTable = ROUTES,
    method: str = "GET",
    body: bytes = b"",
) -> func.HttpResponse:
    """Route `path` as the host does and call the function it reaches (404 when none does)."""
    match = table.match(method, path)
    if match is NOT_FOUND:
        return func.HttpResponse(status_code=404)
    req = func.HttpRequest(
        method,
        f"http://127.0.0.1:7071{path}",
        headers=headers or {},
        body=body,
        route_params=dict(match.params),
    )
    result: func.HttpResponse = match.function.user_function(req)
    return result


@pytest.fixture(scope="module")
def built() -> Path:
    if not (ui.DIST / "index.html").exists():
        _missing_component("ui/dist is not built: run `node ui/build.mjs` (make setup does)")
    return ui.DIST


def test_the_root_and_ui_without_slash_redirect_to_the_ui() -> None:
    for path in ("/", "/ui"):
        resp = get(path)
        assert (resp.status_code, resp.headers["Location"]) == (302, "/ui/"), path
    assert ROUTES.match("GET", "/x") is NOT_FOUND  # the root's route takes the empty path only
    assert ROUTES.match("GET", "/case").function.name == "list_cases"  # type: ignore[union-attr]


def test_index_is_revalidated_and_bundles_are_cached_for_a_year(built: Path) -> None:
    index = get("/ui/")
    assert index.status_code == 200
    assert index.headers["Content-Type"] == "text/html; charset=utf-8"
    assert index.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in index.headers["Content-Security-Policy"]
    assert index.headers["X-Content-Type-Options"] == "nosniff"
    html = index.get_body().decode()
    script = html.split('<script type="module" src="')[1].split('"')[0]
    style = html.split('<link rel="stylesheet" href="')[1].split('"')[0]
    for url, kind in (
        (script, "text/javascript; charset=utf-8"),
        (style, "text/css; charset=utf-8"),
    ):
        resp = get(url)
        assert resp.status_code == 200, url
        assert resp.headers["Content-Type"] == kind
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        again = get(url, {"If-None-Match": resp.headers["ETag"]})
        assert (again.status_code, again.get_body()) == (304, b"")


def test_app_pages_get_the_index_and_missing_files_404(built: Path) -> None:
    index = get("/ui/").get_body()
    for page in ("/ui/jobs", "/ui/case/2", "/ui/job/b6f8d434a847fb0f-8204070794612-8f998a"):
        assert get(page).get_body() == index, page
    for missing in ("/ui/app.js", "/ui/assets/app-NOTBUILT.js", "/ui/favicon.ico"):
        assert get(missing).status_code == 404, missing
    assert get("/ui/favicon.svg").headers["Content-Type"] == "image/svg+xml"


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../function_app.py",
        "/ui/%2e%2e/host.json",
        "/ui/..%2Fhost.json",
        "/ui/assets/..%2F..%2F..%2Fhost.json",
        "/ui/assets/../../host.json",
        "/ui/.../host.json",
        "/ui//etc/passwd",
        "/ui/%2Fetc%2Fpasswd",
        "/ui/a\\..\\host.json",
        "/ui/index.html%00.js",
        "/ui/.env",
        "/ui/assets/.hidden",
        "/ui/%2e%2e%2f%2e%2e%2fhost.json",
    ],
)
def test_paths_outside_the_build_are_not_served(built: Path, path: str) -> None:
    resp = get(path)
    assert (resp.status_code, resp.get_body()) == (404, b"not found"), path


def test_resolve_keeps_to_its_folder(tmp_path: Path) -> None:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html>")
    (root / "assets" / "app-ABCDEFGH.js").write_text("1")
    (tmp_path / "secret.txt").write_text("no")
    (root / "assets" / "link.txt").symlink_to(tmp_path / "secret.txt")
    assert ui.resolve(root, "") == "index.html"
    assert ui.resolve(root, "assets/app-ABCDEFGH.js") == "assets/app-ABCDEFGH.js"
    assert ui.resolve(root, "job/123") == "index.html"
    assert ui.resolve(root, "assets/link.txt") is None  # a link out of the folder is not followed
    assert ui.resolve(root, "../secret.txt") is None
    assert ui.resolve(root, "assets/nope.js") is None


def test_sign_in_settings() -> None:
    assert ui.auth_config({}) == {"mode": "dev", "sign_in": "/dev/sign-in"}
    entra = ui.auth_config(
        {
            "AUTH_UI_CLIENT_ID": "app-id",
            "AUTH_AUDIENCE": "api://simgate",
            "AUTH_ISSUER": "https://login.microsoftonline.com/tenant-1/v2.0",
        }
    )
    assert entra == {
        "mode": "msal",
        "client_id": "app-id",
        "authority": "https://login.microsoftonline.com/tenant-1",
        "scopes": ["api://simgate/.default"],
        "redirect_path": "/ui/auth.html",
    }
    assert "frame-src 'none'" in ui.content_security_policy({})


def test_the_dev_sign_in_is_devhosts_and_not_the_apps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ROUTES.match("GET", "/dev/sign-in") is NOT_FOUND
    make_key_pair(tmp_path / "signing.pem", tmp_path / "jwks.json")
    monkeypatch.setenv(signin.KEY_SETTING, str(tmp_path / "signing.pem"))
    page = get("/dev/sign-in", table=SIGN_IN)
    assert page.status_code == 200
    assert b'<label for="user">User name</label>' in page.get_body()

    def post(body: Any, content_type: str = "application/json") -> func.HttpResponse:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return get("/dev/sign-in", {"Content-Type": content_type}, SIGN_IN, "POST", data)

    answer = post({"user": "martin"})
    assert answer.status_code == 200
    token = json.loads(answer.get_body())["access_token"]
    jwks = json.loads((tmp_path / "jwks.json").read_text())
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=DEV_AUDIENCE, issuer=DEV_ISSUER)
    assert (claims["sub"], claims["roles"]) == ("martin", [])
    assert (
        post(b"user=martin", "application/x-www-form-urlencoded").status_code == 415
    )  # no cross-site form posts
    assert post({"user": "no spaces allowed"}).status_code == 422
    assert post({"user": ""}).status_code == 422
