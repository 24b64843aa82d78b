"""The HTTP POST of one webhook attempt, over httpx: connected to a checked address (the URL
carries the address; Host and, for https, the TLS server name carry the host), no proxies
from the environment, no redirects followed."""

from __future__ import annotations

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
    """A Sender over one httpx.AsyncClient (connections reused per address)."""

    def __init__(self) -> None:
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
        request = self._client.build_request(
            "POST",
            url,
            headers=headers,
            content=body,
            timeout=timeout,
            extensions={"sni_hostname": server_name},
        )
        response = await self._client.send(request, stream=True)
        await response.aclose()
        return response.status_code

    async def close(self) -> None:
        """Close the client."""
        await self._client.aclose()
