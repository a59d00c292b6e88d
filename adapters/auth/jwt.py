"""Bearer JWTs (HS256): signature, expiry and audience are always checked.

Claims: `sub` (who), `role` (one of the roles), `aud`, `exp`, and for role creator
`creator_id` (the creator they act as)."""

import time
from typing import Any
from uuid import UUID

import jwt

from adapters.auth.principal import AuthError, Principal, Role

ALGORITHM = "HS256"


def issue(
    secret: str,
    *,
    subject: str,
    role: Role | str,
    audience: str,
    ttl_seconds: float = 3600,
    creator_id: UUID | None = None,
    now: float | None = None,
) -> str:
    """A signed token (tests, `reelpulse keys token`)."""
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "sub": subject, "role": Role(role).value, "aud": audience,
        "iat": int(issued), "exp": int(issued + ttl_seconds),
    }  # fmt: skip
    if creator_id is not None:
        claims["creator_id"] = str(creator_id)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(token: str, *, secret: str, audience: str, leeway: float = 5.0) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # never trust the token's own `alg`
            audience=audience,
            leeway=leeway,
            options={"require": ["exp", "aud", "sub", "role"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "token_expired", "the bearer token has expired") from None
    except jwt.InvalidAudienceError:
        raise AuthError(401, "invalid_token", "the bearer token is for another audience") from None
    except jwt.InvalidTokenError as e:
        raise AuthError(401, "invalid_token", f"invalid bearer token: {e}") from None
    try:
        role = Role(claims["role"])
        creator = UUID(claims["creator_id"]) if claims.get("creator_id") else None
    except ValueError:
        raise AuthError(
            401, "invalid_token", "the bearer token has an invalid role or creator_id"
        ) from None
    if role is Role.CREATOR and creator is None:
        raise AuthError(401, "invalid_token", "a creator token needs a creator_id claim")
    return Principal(role, f"jwt:{claims['sub']}", creator, label=str(claims["sub"]))
