"""In-process turns on streams: one holder per key, keys taken in order, none kept."""

from __future__ import annotations

import asyncio
import gc

from ledger.stream_queues import StreamQueues


async def test_commands_on_the_same_stream_take_turns_and_others_do_not_wait():
    queues = StreamQueues()
    inside: dict[str, int] = {"item-1": 0, "item-2": 0}
    most = dict(inside)
    overlapped = False

    async def command(key: str) -> None:
        nonlocal overlapped
        async with queues.turn(1, [key]):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            overlapped |= inside == {"item-1": 1, "item-2": 1}
            await asyncio.sleep(0.001)
            inside[key] -= 1

    await asyncio.gather(*(command(f"item-{n % 2 + 1}") for n in range(40)))
    assert most == {"item-1": 1, "item-2": 1}
    assert overlapped  # item-2's commands did not wait for item-1's


async def test_opposite_orders_never_deadlock_and_organizations_are_apart():
    queues = StreamQueues()
    both_orgs_inside = asyncio.Event()
    inside = set()

    async def command(org: int, keys: list[str]) -> None:
        async with queues.turn(org, keys):
            inside.add(org)
            if inside == {1, 2}:
                both_orgs_inside.set()
            await asyncio.sleep(0.001)
            inside.discard(org)

    work = [command(1, ["item-1", "item-2"]), command(1, ["item-2", "item-1"])] * 20
    work += [command(2, ["item-1", "item-2"])] * 20
    await asyncio.wait_for(asyncio.gather(*work), 10)
    assert both_orgs_inside.is_set()  # org 2's item-1 is not org 1's


async def test_locks_are_dropped_when_nobody_holds_or_waits():
    queues = StreamQueues()
    for n in range(100):
        async with queues.turn(1, [f"item-{n}", "job-7"]):
            pass
    gc.collect()
    assert len(queues._locks) == 0
