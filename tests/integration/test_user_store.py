"""The user store on a real Redis: a record is a user only once its roles are written, so a
sign-in racing `create` (hash first, then the rest) never gets a session without roles."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from app.adapters.redis_client import connect
from app.adapters.users import UserStore
from app.kernel import keys

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
async def users(redis_url: str) -> AsyncIterator[tuple[UserStore, Redis]]:
    client = connect(redis_url)
    try:
        yield UserStore(client, FAST), client
    finally:
        await client.aclose()


async def test_a_created_user_signs_in_with_its_roles(users: tuple[UserStore, Redis]) -> None:
    store, _ = users
    assert await store.create("carol", "carol-password", {"customer"})
    found = await store.authenticate("carol", "carol-password")
    assert found is not None and found.roles == {"customer"}
    assert await store.get("carol") == found


async def test_a_record_whose_roles_are_not_written_yet_is_no_user(
    users: tuple[UserStore, Redis],
) -> None:
    store, redis = users
    await redis.hset(keys.user("dave"), "password_hash", FAST.hash("dave-password"))
    assert await store.authenticate("dave", "dave-password") is None
    assert await store.get("dave") is None
    assert not await store.create("dave", "dave-password", {"customer"})  # the name is claimed
