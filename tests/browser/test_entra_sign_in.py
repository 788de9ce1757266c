"""Sign-in with Entra ID, as configured by app settings: the page loads MSAL and sends the browser to the authority
with the app's client id, the API's scope, PKCE and the redirect bridge. Entra itself is stubbed (no network here):
its metadata document is answered by the test, and the authorize request is caught before it leaves."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.conftest import Gateway

pytestmark = [pytest.mark.browser, pytest.mark.azurite]

TENANT = "7f3c5a2e-1b2c-4d5e-8f90-123456789abc"
AUTHORITY = f"https://login.microsoftonline.com/{TENANT}"
CLIENT_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
SCOPE = "api://simgate-test/access_as_user"


def metadata() -> dict[str, Any]:
    """The tenant's OpenID configuration, as Entra publishes it (the parts MSAL reads)."""
    base = f"{AUTHORITY}/oauth2/v2.0"
    return {
        "issuer": f"{AUTHORITY}/v2.0",
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "end_session_endpoint": f"{base}/logout",
        "jwks_uri": f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "id_token", "code id_token"],
        "scopes_supported": ["openid"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
    }


@pytest.fixture
def entra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app settings a deployment sets for Entra ID sign-in (read by /ui/config.json on each request)."""
    monkeypatch.setenv("AUTH_UI_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AUTH_UI_AUTHORITY", AUTHORITY)
    monkeypatch.setenv("AUTH_UI_SCOPE", SCOPE)


def test_sign_in_goes_to_entra_with_the_apps_settings(page: Any, ui: Gateway, entra: None) -> None:
    asked: list[str] = []

    def answer(route: Any) -> None:
        url = route.request.url
        asked.append(url)
        if url.endswith("/.well-known/openid-configuration"):
            route.fulfill(
                status=200,
                content_type="application/json",
                body=json.dumps(metadata()),
                headers={"Access-Control-Allow-Origin": "*"},
            )
        elif "/oauth2/v2.0/authorize" in url:
            route.fulfill(
                status=200,
                content_type="text/html",
                body="<!doctype html><title>Entra (stub)</title>",
            )
        else:
            route.fulfill(status=404, body="", headers={"Access-Control-Allow-Origin": "*"})

    page.route("https://login.microsoftonline.com/**", answer)
    config = ui.call("GET", "/ui/config.json").body["auth"]
    assert config == {
        "mode": "msal",
        "client_id": CLIENT_ID,
        "authority": AUTHORITY,
        "scopes": [SCOPE],
        "redirect_path": "/ui/auth.html",
    }

    page.goto("/ui/jobs")
    page.get_by_role("heading", name="Sign in").wait_for()  # no account yet: the jobs need one
    page.get_by_role("button", name="Sign in").first.click()
    page.wait_for_url("https://login.microsoftonline.com/**")

    authorize = next(u for u in asked if "/oauth2/v2.0/authorize" in u)
    assert authorize.startswith(f"{AUTHORITY}/oauth2/v2.0/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{ui.url}/ui/auth.html"
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert SCOPE in query["scope"].split()
    assert query["state"]


def test_the_redirect_bridge_without_a_response_goes_home(
    page: Any, ui: Gateway, entra: None
) -> None:
    page.goto("/ui/auth.html")
    page.wait_for_url("**/ui/")
    page.get_by_role("heading", name="Simulation cases").wait_for()


def test_the_page_says_where_entra_may_be_framed(ui: Gateway, entra: None) -> None:
    policy = ui.call("GET", "/ui/").headers["content-security-policy"]
    assert "frame-src https://login.microsoftonline.com;" in policy
    assert "script-src 'self';" in policy
