"""The local identity provider: a development signing key, its public JWKS, and tokens for named users.

The app validates these tokens exactly as it validates Entra ID's (signature by JWKS, issuer, audience, expiry):
only the issuer, audience and key set differ, and those are settings. Like Entra's delegated tokens they carry
the API's scope in `scp` (`DEV_SCOPE`, the one docs/deploy.md exposes), so `AUTH_REQUIRED_SCOPE` may be set
locally as in Azure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SIGNING_KEY = Path(".local/keys/dev-signing.pem")
JWKS_FILE = Path(".local/keys/dev-jwks.json")
DEV_ISSUER = "https://simgate.local/dev-issuer"
DEV_AUDIENCE = "api://simgate-local"
ADMIN_ROLE = "simgate.admin"
DEV_SCOPE = "access_as_user"  # the delegated scope the API registration exposes (docs/deploy.md)
KID = "simgate-dev-1"


def make_key_pair(private_path: Path, jwks_path: Path, kid: str = KID) -> None:
    """Write a new RSA signing key (0600) and the JWKS holding its public half."""
    from devhost.setup import write_private

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(private_path, pem)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks_path.write_text(
        json.dumps({"keys": [{**public, "kid": kid, "use": "sig", "alg": "RS256"}]}, indent=2)
    )


def mint(
    private_path: Path,
    user: str,
    *,
    admin: bool = False,
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
    ttl_seconds: int = 12 * 3600,
    kid: str = KID,
    **extra: Any,
) -> str:
    """A signed token for `user` (subject and preferred_username), with the admin role if asked.

    `extra` adds or replaces claims; a claim given as None is left out (a test's token without `scp`, say).
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": user,
        "preferred_username": user,
        "scp": DEV_SCOPE,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "roles": [ADMIN_ROLE] if admin else [],
        **extra,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, private_path.read_bytes(), algorithm="RS256", headers={"kid": kid})
