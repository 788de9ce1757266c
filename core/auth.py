"""Who is calling: validate a user's OIDC bearer token in-function.

The token is a JWT signed by the identity provider (Entra ID in Azure; a development key made at set-up locally).
It is checked for signature (a key from the provider's JWKS, fetched once and cached), issuer, audience, expiry
and not-before with a small leeway. Both environments take the same path; there is no mode that trusts a header.
Admins carry the admin role in the `roles` claim.

A user route takes only a token that acts for a user: it must name one (a non-empty `oid` or `sub`), and an
application's own token (Entra's client-credentials tokens: `idtyp: "app"`, and no `scp`) is refused. With
`AUTH_REQUIRED_SCOPE` set, the delegated scopes in `scp` must include it (`*`: any scope, i.e. `scp` is present).
Nothing the token says reaches an error message: the key id, issuer or subject of a refused token are
unauthenticated input (F4 of the security review).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from core.errors import Unauthenticated, Unavailable
from core.services import get_settings, services

ALGORITHMS = ["RS256"]  # never "none", never HMAC: the key set holds public keys only


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a stable id (Entra `oid`, else `sub`), a display name and admin standing."""

    user_id: str
    name: str
    is_admin: bool


def authenticate(authorization: str | None) -> Principal:
    """The caller named by an `Authorization: Bearer <jwt>` header; `Unauthenticated` says why not."""
    token = bearer_token(authorization)
    settings = get_settings()
    try:
        key = _signing_key(token)
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
            leeway=settings.auth_leeway_seconds,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired") from None
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"the token is not valid: {exc}") from None
    _check_acts_for_a_user(claims, settings.auth_required_scope)
    return _principal(claims, settings.auth_admin_role)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; `Unauthenticated` when there is none."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("an Authorization: Bearer token is required")
    return token.strip()


ANY_SCOPE = "*"


def _check_acts_for_a_user(claims: dict[str, Any], required_scope: str) -> None:
    """Refuse a token that names no user, or that an application holds for itself rather than for a user."""
    if not _user_id(claims):
        raise Unauthenticated("the token names no user: its sub is empty and it has no oid")
    if claims.get("idtyp") == "app":
        raise Unauthenticated("the token is an application's own (idtyp app), not a user's")
    if not required_scope:
        return
    scopes = claims.get("scp")
    if not isinstance(scopes, str) or not scopes.split():
        raise Unauthenticated(
            "the token carries no delegated scope (scp): it does not act for a user"
        )
    if required_scope != ANY_SCOPE and required_scope not in scopes.split():
        raise Unauthenticated(f"the token lacks the scope {required_scope!r} in scp")


def _user_id(claims: dict[str, Any]) -> str:
    """Entra's stable `oid` when the token has one, else `sub`; empty when neither names anybody."""
    oid = claims.get("oid")
    if isinstance(oid, str) and oid.strip():
        return oid
    sub = claims.get("sub")
    return sub if isinstance(sub, str) and sub.strip() else ""


def _principal(claims: dict[str, Any], admin_role: str) -> Principal:
    user_id = _user_id(claims)
    name = str(claims.get("preferred_username") or claims.get("name") or user_id)
    roles = claims.get("roles") or []
    return Principal(
        user_id=user_id, name=name, is_admin=isinstance(roles, list) and admin_role in roles
    )


def _signing_key(token: str) -> Any:
    """The public key the token names (by `kid`) in the provider's key set."""
    kid = jwt.get_unverified_header(token).get("kid")
    return services().keys.find(get_settings().auth_jwks, kid)


class KeyCache:
    """The provider's key set, fetched once per worker and again (at most every few minutes) for a new `kid`."""

    REFETCH_AFTER_SECONDS = 300.0

    def __init__(self) -> None:
        self._source = ""
        self._keys: list[Any] = []
        self._fetched = -math.inf

    def clear(self) -> None:
        """Forget the key set (tests, key rotation)."""
        self._source, self._keys, self._fetched = "", [], -math.inf

    def find(self, source: str, kid: str | None) -> Any:
        """The key with this `kid` (or the only key, when the token names none)."""
        if source != self._source or self._stale_for(kid):
            self._keys, self._source, self._fetched = _fetch(source), source, time.monotonic()
        matches = [k for k in self._keys if kid is None or k.key_id == kid]
        if len(matches) != 1:
            # Not the kid itself: it is the caller's text, and this message reaches the answer.
            raise jwt.InvalidKeyError(
                "no signing key in the provider's key set has the token's key id"
            )
        return matches[0].key

    def _stale_for(self, kid: str | None) -> bool:
        # A kid we don't know may be a rotated key; refetch, but rarely enough that junk tokens can't make us spam.
        known = any(k.key_id == kid for k in self._keys)
        return not known and time.monotonic() - self._fetched > self.REFETCH_AFTER_SECONDS


def _fetch(source: str) -> list[Any]:
    """The keys at `source`: an https JWKS URL, or a JWKS file made at local set-up."""
    if not source:
        raise Unavailable("the gateway has no identity provider configured (AUTH_JWKS)")
    try:
        if "://" in source:
            return list(jwt.PyJWKClient(source, cache_jwk_set=False, timeout=10).get_jwk_set().keys)
        return list(
            jwt.PyJWKSet.from_dict(json.loads(Path(source).read_text(encoding="utf-8"))).keys
        )
    except (OSError, ValueError, jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
        raise Unavailable(f"the identity provider's key set cannot be read: {exc}") from exc
