"""Groups: calls that arrive while a group is on its way go together in the next one, each
answered on its own; a failed send fails only its group."""

from __future__ import annotations

import asyncio

import pytest

from ponder_runtime.groups import Groups


async def test_waiting_calls_go_together_and_each_gets_its_reply() -> None:
    """A call goes alone; the four that arrive while it is on its way go as one group; a reply
    that is an exception is raised to its caller only."""
    sent: list[list[int]] = []
    on_its_way = asyncio.Event()

    async def send(items: list[int]) -> list[object]:
        sent.append(items)
        on_its_way.set()
        await asyncio.sleep(0)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    groups: Groups[int] = Groups(send)
    first = asyncio.ensure_future(groups.call(0))
    await on_its_way.wait()
    rest = await asyncio.gather(*(groups.call(i) for i in range(1, 5)), return_exceptions=True)
    replies = [await first, *rest]
    await groups.close()
    assert sent == [[0], [1, 2, 3, 4]]
    assert [r if isinstance(r, int) else str(r) for r in replies] == [0, "odd 1", 20, "odd 3", 40]


async def test_a_send_that_raises_fails_its_group_and_the_next_group_goes() -> None:
    """A send that raises is every call's error in its group; later calls are sent anew."""
    calls = 0

    async def send(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("gone")
        return [item.upper() for item in items]

    groups: Groups[str] = Groups(send)
    with pytest.raises(ConnectionError, match="gone"):
        await groups.call("a")
    assert await groups.call("b") == "B"
    await groups.close()
