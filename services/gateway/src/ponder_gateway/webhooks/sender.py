"""The HTTP POST of one webhook attempt, over httpx: connected to a checked address (the URL
carries the address; Host and, for https, the TLS server name carry the host), no proxies
from the environment, no redirects followed."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Mapping
from typing import Protocol

import httpx


class Sender(Protocol):
    """Sends one POST and returns the HTTP status; raises httpx.HTTPError when no answer."""

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        server_name: str,
        timeout: float,
    ) -> int:
        """POST `body` to `url` (an address URL) for host `server_name`."""
        ...

    async def close(self) -> None:
        """Release the connections."""
        ...


class HttpxSender:
    """A Sender over httpx: plain-HTTP connections reused per address, a fresh TLS connection
    per https attempt (its certificate checked against the URL's host name, with the system's
    CAs or `verify`)."""

    def __init__(self, verify: ssl.SSLContext | None = None) -> None:
        self._verify: ssl.SSLContext | bool = verify if verify is not None else True
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        server_name: str,
        timeout: float,
    ) -> int:
        """POST; the answer's status code (its body is never read: a receiver cannot make
        the gateway download anything)."""
        async with contextlib.AsyncExitStack() as stack:
            client = self._client
            if url.startswith("https:"):
                # A pooled TLS connection is keyed by address only: it would carry the next
                # host's request over a connection whose certificate was checked for another name.
                client = await stack.enter_async_context(
                    httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=self._verify)
                )
            request = client.build_request(
                "POST",
                url,
                headers=headers,
                content=body,
                timeout=timeout,
                extensions={"sni_hostname": server_name},
            )
            response = await client.send(request, stream=True)
            await response.aclose()
            return response.status_code

    async def close(self) -> None:
        """Close the client."""
        await self._client.aclose()
