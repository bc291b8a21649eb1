"""Bearer-token checks, shared by the runtime and the local backend's front door."""

from __future__ import annotations

import hmac

#: Paths served without a token, so that platforms' health checks work.
OPEN_PATHS = frozenset({"/health", "/ping"})

UNAUTHORIZED_MESSAGE = "Missing or invalid bearer token; send the deployment's token as 'Authorization: Bearer TOKEN'."


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Return True when the ``Authorization`` header value carries ``token`` as a bearer token.

    ``hmac.compare_digest`` takes the same time wherever the strings differ, so timing reveals
    nothing of the token.
    """
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
