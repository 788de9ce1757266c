"""devhost's development sign-in (`POST /dev/sign-in`), called as the host calls it: `admin` is a JSON boolean
(F6 of the security review: `bool()` made the string "false" an admin), and the token acts for a user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.functions as func
import jwt
import pytest

from devhost import signin
from devhost.tokens import ADMIN_ROLE, DEV_SCOPE, make_key_pair


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_key_pair(tmp_path / "dev.pem", tmp_path / "jwks.json")
    monkeypatch.setenv(signin.KEY_SETTING, str(tmp_path / "dev.pem"))
    return tmp_path / "dev.pem"


def sign_in(body: Any) -> func.HttpResponse:
    req = func.HttpRequest(
        "POST",
        "http://127.0.0.1:7071/dev/sign-in",
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    return signin.dev_sign_in(req)


def claims(resp: func.HttpResponse) -> dict[str, Any]:
    token = json.loads(resp.get_body())["access_token"]
    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.mark.parametrize("admin", [True, False])
def test_a_boolean_says_whether_the_token_is_an_admins(key: Path, admin: bool) -> None:
    resp = sign_in({"user": "alice", "admin": admin})
    assert resp.status_code == 200
    assert json.loads(resp.get_body())["admin"] is admin
    assert (ADMIN_ROLE in claims(resp)["roles"]) is admin


def test_no_admin_member_is_a_plain_user(key: Path) -> None:
    resp = sign_in({"user": "alice"})
    assert resp.status_code == 200
    assert claims(resp)["roles"] == []


@pytest.mark.parametrize("admin", ["false", "true", "0", "1", "", 1, 0, None, [], {}, [True]])
def test_anything_but_a_boolean_is_a_422_naming_admin(key: Path, admin: Any) -> None:
    resp = sign_in({"user": "alice", "admin": admin})
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"
    assert json.loads(resp.get_body())["errors"] == [
        {"name": "admin", "in": "body", "detail": "must be true or false"}
    ]


def test_the_token_carries_the_scope_user_routes_may_require(key: Path) -> None:
    got = claims(sign_in({"user": "alice"}))
    assert got["scp"] == DEV_SCOPE
    assert got["sub"] == "alice"
    assert "idtyp" not in got


def test_answers_are_not_stored_and_not_sniffed(key: Path) -> None:
    for resp in (sign_in({"user": "alice"}), sign_in({"user": "alice", "admin": "yes"})):
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
