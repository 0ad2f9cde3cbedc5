"""What keeps the HTTP server safe by default: loopback binding, a token, bounded requests."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from theramind.errors import ConfigError

TOKEN_ENV = "THERAMIND_API_TOKEN"
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ServeOptions:
    """How the server is exposed.

    Attributes:
        host: The address to bind; loopback unless told otherwise.
        port: The TCP port.
        token: The API token; required when `host` is not a loopback address.
        cors_origins: Origins allowed to call the API from a browser (none by default).
        max_body_bytes: The largest request body accepted.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    max_body_bytes: int = 64 * 1024


def is_loopback(host: str) -> bool:
    """Return whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(options: ServeOptions) -> None:
    """Refuse to expose the API beyond this machine without a long enough token.

    Raises:
        ConfigError: a non-loopback host without a token, or a token that is too short.
    """
    if options.token is not None and len(options.token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"the API token must be at least {MIN_TOKEN_CHARS} characters long")
    if not is_loopback(options.host) and not options.token:
        raise ConfigError(
            f"refusing to listen on {options.host} without an API token: anyone who can reach "
            f"it could read patients' records. Set {TOKEN_ENV} (or pass --token) to a long "
            "random string, or bind to 127.0.0.1"
        )


def token_matches(expected: str | None, header: str | None) -> bool:
    """Return whether an `Authorization: Bearer ...` header carries the expected token."""
    if expected is None:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").strip(), expected)


class BodyLimit:
    """ASGI middleware answering 413 to a request body over `limit` bytes, declared or sent."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a request whose body is over the limit, declared or streamed."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(send, self.limit)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = (
        b'{"error":"RequestTooLarge","message":"the request body is over '
        + str(limit).encode()
        + b' bytes"}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
