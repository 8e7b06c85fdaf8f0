"""Signed identity: who the user is, proven by a JWT, never by the conversation id.

Rasa's chat webhooks are open and the sender id (and any metadata) is the
client's choice, so in the production profile (``ACCOUNT_IDENTITY=verified``)
an account is read only for a message whose metadata carries a valid token:

- ``metadata.identity_token``: a JWT signed with HS256 and the secret
  ``IDENTITY_JWT_SECRET`` (settings/: at least 32 characters, or the process
  refuses to start); ``sub`` is the account id; ``exp`` is required and
  checked. The web page's host mints it for its logged-in user; our messaging
  connectors mint it after verifying the platform's signature, with the
  platform-verified user id as ``sub``.

Pure (pyjwt only): used by the action server to verify and by the Rasa-side
connectors to mint.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Optional

import jwt

logger = logging.getLogger(__name__)

METADATA_KEY = "identity_token"
ALGORITHM = "HS256"
DEFAULT_TTL_S = 3600


def mint(subject: str, secret: str, ttl_s: int = DEFAULT_TTL_S) -> str:
    """A signed identity token for ``subject``, valid for ``ttl_s`` seconds."""
    now = int(time.time())
    return jwt.encode(
        {"sub": subject, "iat": now, "exp": now + ttl_s}, secret, algorithm=ALGORITHM
    )


def verify(token: Any, secret: Optional[str]) -> Optional[str]:
    """The account id a token proves, or None (missing, forged, expired, malformed)."""
    if not secret or not isinstance(token, str) or not token:
        return None
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
    except jwt.PyJWTError as error:
        logger.info("identity token refused: %s", type(error).__name__)
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) and subject else None


def verified_account(
    metadata: Optional[Mapping[str, Any]], secret: Optional[str]
) -> Optional[str]:
    """The account proven by a message's metadata, if any."""
    if not isinstance(metadata, Mapping):
        return None
    return verify(metadata.get(METADATA_KEY), secret)
