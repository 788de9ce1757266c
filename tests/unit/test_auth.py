"""Bearer token validation: signature by JWKS, issuer, audience, expiry with leeway, no header trust."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from core import auth
from core.errors import Unauthenticated, Unavailable
from core.services import get_settings, reset_services
from devhost.tokens import DEV_AUDIENCE, DEV_ISSUER, make_key_pair, mint


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    private, jwks = tmp_path / "dev.pem", tmp_path / "jwks.json"
    make_key_pair(private, jwks)
    monkeypatch.setenv("AUTH_ISSUER", DEV_ISSUER)
    monkeypatch.setenv("AUTH_AUDIENCE", DEV_AUDIENCE)
    monkeypatch.setenv("AUTH_JWKS", str(jwks))
    monkeypatch.delenv(
        "AUTH_REQUIRED_SCOPE", raising=False
    )  # the session's gateway may have set it
    reset_services()
    reset_services()
    yield private
    reset_services()
    reset_services()


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_good_token_names_the_caller(keys: Path) -> None:
    who = auth.authenticate(bearer(mint(keys, "martin")))
    assert who == auth.Principal(user_id="martin", name="martin", is_admin=False)
    assert auth.authenticate(bearer(mint(keys, "root", admin=True))).is_admin


def test_entra_object_id_is_the_stable_user_id(keys: Path) -> None:
    who = auth.authenticate(
        bearer(mint(keys, "pairwise-sub", oid="0000-1111", preferred_username="m@x.org"))
    )
    assert (who.user_id, who.name) == ("0000-1111", "m@x.org")


def test_a_role_claim_that_is_not_a_list_grants_nothing(keys: Path) -> None:
    assert not auth.authenticate(bearer(mint(keys, "eve", roles="simgate.admin"))).is_admin


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic bWFydGluOng=", "martin", "Token abc"]
)
def test_no_bearer_token_is_refused(keys: Path, header: str | None) -> None:
    with pytest.raises(Unauthenticated, match="Bearer token is required"):
        auth.authenticate(header)


def test_expiry_is_checked_with_a_small_leeway(keys: Path) -> None:
    auth.authenticate(bearer(mint(keys, "martin", ttl_seconds=-10)))  # within the 30 s leeway
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate(bearer(mint(keys, "martin", ttl_seconds=-120)))


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({"audience": "api://other"}, "(?i)audience"),
        ({"issuer": "https://evil.example/"}, "(?i)issuer"),
    ],
)
def test_wrong_audience_or_issuer_is_refused(keys: Path, claims: dict[str, str], says: str) -> None:
    with pytest.raises(Unauthenticated, match=says):
        auth.authenticate(bearer(mint(keys, "martin", **claims)))  # type: ignore[arg-type]


def test_a_token_signed_by_another_key_is_refused(keys: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    make_key_pair(other, tmp_path / "other.json")  # same kid, different key
    with pytest.raises(Unauthenticated, match="not valid"):
        auth.authenticate(bearer(mint(other, "martin")))


def test_an_unknown_key_id_is_refused(keys: Path) -> None:
    with pytest.raises(Unauthenticated, match="no signing key"):
        auth.authenticate(bearer(mint(keys, "martin", kid="rotated-away")))


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused(keys: Path) -> None:
    now = int(time.time())
    claims = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "eve", "exp": now + 60}
    unsigned = f"{_b64({'alg': 'none', 'kid': 'simgate-dev-1'})}.{_b64(claims)}."
    with pytest.raises(Unauthenticated):
        auth.authenticate(bearer(unsigned))


def test_hmac_signed_with_the_public_key_is_refused(keys: Path) -> None:
    # The classic algorithm confusion: HS256 "signed" with the public key, which an attacker can read.
    public = jwt.PyJWK(json.loads(Path(get_settings().auth_jwks).read_text())["keys"][0]).key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "eve", "exp": int(time.time()) + 60}
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'simgate-dev-1'})}.{_b64(claims)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(Unauthenticated):
        auth.authenticate(bearer(forged))


def test_a_token_without_subject_is_refused(keys: Path) -> None:
    token = mint(keys, "martin")
    claims = jwt.decode(token, options={"verify_signature": False})
    del claims["sub"]
    resigned = jwt.encode(
        claims, keys.read_bytes(), algorithm="RS256", headers={"kid": "simgate-dev-1"}
    )
    with pytest.raises(Unauthenticated, match="sub"):
        auth.authenticate(bearer(resigned))


def test_garbage_is_refused_not_crashed(keys: Path) -> None:
    for junk in ["a.b.c", "x" * 5000, "....", "eyJ.eyJ.sig", "\u00e9\u00e9.\u00e9"]:
        with pytest.raises(Unauthenticated):
            auth.authenticate(bearer(junk))


def test_no_key_set_configured_is_unavailable_not_a_crash(
    keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_JWKS", "")
    reset_services()
    reset_services()
    with pytest.raises(Unavailable):
        auth.authenticate(bearer(mint(keys, "martin")))


# --- F4: nothing from the token in the error ---------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["k\u00e9\u4e2d", 'a", error="x', "../../etc/passwd", "x" * 5000])
def test_an_unknown_key_id_is_not_echoed(keys: Path, kid: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        auth.authenticate(bearer(mint(keys, "martin", kid=kid)))
    assert kid not in caught.value.detail
    assert caught.value.detail.isascii()
    assert len(caught.value.detail) < 200


# --- F13: a token that acts for a user -------------------------------------------------------------------------


def required_scope(monkeypatch: pytest.MonkeyPatch, scope: str) -> None:
    monkeypatch.setenv("AUTH_REQUIRED_SCOPE", scope)
    reset_services()


@pytest.mark.parametrize(
    "claims", [{"sub": ""}, {"sub": "   "}, {"sub": "", "oid": ""}, {"sub": "", "oid": 7}]
)
def test_a_token_that_names_nobody_is_refused(keys: Path, claims: dict[str, object]) -> None:
    with pytest.raises(Unauthenticated, match="names no user"):
        auth.authenticate(bearer(mint(keys, "martin", **claims)))  # type: ignore[arg-type]


def test_an_empty_sub_with_an_oid_is_the_oid(keys: Path) -> None:
    assert (
        auth.authenticate(bearer(mint(keys, "martin", sub="", oid="0000-1111"))).user_id
        == "0000-1111"
    )
    assert auth.authenticate(bearer(mint(keys, "bob", oid=""))).user_id == "bob"


@pytest.mark.parametrize("scope", ["", "*", "access_as_user"])
def test_an_application_token_is_refused_whatever_the_scope_setting(
    keys: Path, monkeypatch: pytest.MonkeyPatch, scope: str
) -> None:
    required_scope(monkeypatch, scope)
    with pytest.raises(Unauthenticated, match="application's own"):
        auth.authenticate(bearer(mint(keys, "daemon", idtyp="app")))
    assert auth.authenticate(bearer(mint(keys, "martin", idtyp="user"))).user_id == "martin"


@pytest.mark.parametrize("scope", ["*", "access_as_user"])
def test_with_a_scope_required_a_token_without_scp_is_refused(
    keys: Path, monkeypatch: pytest.MonkeyPatch, scope: str
) -> None:
    # Entra's client-credentials tokens carry roles but no scp, and idtyp only when the API asks for it.
    required_scope(monkeypatch, scope)
    for claims in ({"scp": None}, {"scp": ""}, {"scp": ["access_as_user"]}):
        with pytest.raises(Unauthenticated, match="no delegated scope"):
            auth.authenticate(bearer(mint(keys, "daemon", **claims)))  # type: ignore[arg-type]
    assert (
        auth.authenticate(bearer(mint(keys, "martin"))).user_id == "martin"
    )  # dev tokens carry the scope


def test_a_named_scope_must_be_among_the_tokens_scopes(
    keys: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    required_scope(monkeypatch, "access_as_user")
    assert (
        auth.authenticate(bearer(mint(keys, "martin", scp="openid access_as_user"))).user_id
        == "martin"
    )
    for scp in ("access_as_admin", "access_as_user_2", "Access_As_User"):
        with pytest.raises(Unauthenticated, match="lacks the scope 'access_as_user'"):
            auth.authenticate(bearer(mint(keys, "martin", scp=scp)))


def test_without_a_required_scope_a_token_without_scp_is_a_user(keys: Path) -> None:
    assert auth.authenticate(bearer(mint(keys, "martin", scp=None))).user_id == "martin"
