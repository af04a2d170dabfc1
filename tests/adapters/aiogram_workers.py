"""Bot processes for the aiogram tests: a real `Dispatcher` fed updates, no network (spawned)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import DisabledEventIsolation
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import Chat, Message, Update, User

from valerie.infrastructure import RedisSessionStore
from valerie.integrations.aiogram import ValerieEventIsolation, ValerieStorage

TOKEN = "42:TEST-TOKEN-NEVER-SENT"
CHAT = 1001


class Order(StatesGroup):
    """The conversation the restart test walks through."""

    size = State()
    confirm = State()


def message_update(number: int, text: str, chat: int = CHAT) -> Update:
    """A private text message from the chat's user, as Telegram would send it."""
    return Update(
        update_id=number,
        message=Message(
            message_id=number,
            date=datetime.now(UTC),
            chat=Chat(id=chat, type="private"),
            from_user=User(id=chat, is_bot=False, first_name="Ada"),
            text=text,
        ),
    )


def make_fsm(kind: str, url: str, prefix: str) -> tuple[BaseStorage, BaseEventIsolation]:
    """The storage and isolation under test: ours, ours with leases, or aiogram's own Redis."""
    if kind == "aiogram":
        storage = RedisStorage.from_url(url, key_builder=DefaultKeyBuilder(prefix=prefix))
        return storage, DisabledEventIsolation()
    store = RedisSessionStore(redis_url=url, prefix=prefix)
    if kind == "valerie+isolation":
        return ValerieStorage(store), ValerieEventIsolation(store, timeout=10, wait=60)
    return ValerieStorage(store), DisabledEventIsolation()


def note_router() -> Router:
    """Each message adds its own key with `update_data`; `count` is read, bumped, written."""
    router = Router()

    @router.message()
    async def note(message: Message, state: FSMContext) -> None:
        await state.update_data({f"seen-{message.message_id}": True})

    return router


def count_router() -> Router:
    """Read-modify-write of a counter in the handler: only isolation keeps every increment."""
    router = Router()

    @router.message()
    async def count(message: Message, state: FSMContext) -> None:
        data = await state.get_data()
        await asyncio.sleep(0.001)  # the handler's work between read and write
        await state.set_data({"count": int(data.get("count", 0)) + 1})

    return router


def order_router() -> Router:
    """A two-step conversation whose state and data must survive a restart between steps."""
    router = Router()

    @router.message(F.text == "/order")
    async def start(message: Message, state: FSMContext) -> Any:
        await state.set_state(Order.size)
        return message.answer("Which size?")

    @router.message(Order.size)
    async def size(message: Message, state: FSMContext) -> Any:
        await state.update_data(size=message.text)
        await state.set_state(Order.confirm)
        return message.answer(f"A {message.text} one, confirm?")

    @router.message(Order.confirm)
    async def confirm(message: Message, state: FSMContext) -> Any:
        data = await state.get_data()
        await state.clear()
        return message.answer(f"Ordered: {data['size']}")

    return router


ROUTERS = {"note": note_router, "count": count_router, "order": order_router}


async def feed(kind: str, url: str, prefix: str, router: str, texts: list[tuple[int, str]]) -> Any:
    """Feed the updates at once (as a busy bot handles them, concurrently); return the replies."""
    storage, isolation = make_fsm(kind, url, prefix)
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation)
    dispatcher.include_router(ROUTERS[router]())
    bot = Bot(TOKEN)
    try:
        replies = await asyncio.gather(
            *(dispatcher.feed_update(bot, message_update(n, text)) for n, text in texts)
        )
    finally:
        await dispatcher.fsm.close()
        await bot.session.close()
    return [getattr(reply, "text", None) for reply in replies]


def bot_process(
    kind: str, url: str, prefix: str, router: str, numbers: range, start: Barrier
) -> None:
    """One bot process: wait for the others, then handle its messages of the one chat."""
    start.wait()
    asyncio.run(feed(kind, url, prefix, router, [(n, f"m{n}") for n in numbers]))
