"""A token credential for Azurite's `--oauth basic` mode, so local runs sign SAS the way Azure does.

Azurite decodes a bearer token without checking its signature; it needs only the claims Entra ID would put in one
(issuer, audience, times, object and tenant ids). The real storage service checks signatures, so these tokens are
worthless there; the credential also refuses to serve any endpoint that is not on this machine.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken

from core.errors import Unavailable

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_OID = "00000000-0000-0000-0000-00000051a6a7"  # the local "identity" of the Function App
_TID = "00000000-0000-0000-0000-0000000001a1"
_TTL = 3600


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class AzuriteCredential:
    """Unsigned tokens with the claims Azurite's basic OAuth requires."""

    @classmethod
    def for_endpoint(cls, url: str) -> AzuriteCredential:
        """The credential for `url`, which must be a local (emulator) endpoint."""
        if urlsplit(url).hostname not in LOOPBACK:
            raise Unavailable(
                f"the azurite storage credential only serves local endpoints, not {url!r}"
            )
        return cls()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A fresh token valid for an hour."""
        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{_TID}/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + _TTL,
            "oid": _OID,
            "tid": _TID,
        }
        return AccessToken(
            f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.unsigned", now + _TTL
        )

    def close(self) -> None:
        """Nothing to release."""
