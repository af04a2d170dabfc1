"""A Telegram bot (aiogram 3) whose conversation state lives in our store; no token needed.

Updates are fed to a real `Dispatcher` (`feed_update`), as a webhook would; replies are the
methods the handlers return, printed instead of sent. The store comes from the environment:

    python examples/aiogram_bot.py                      # in-memory store
    VALERIE_SESSION_STORE=redis VALERIE_SESSION_REDIS_URL=redis://localhost:6379 \
        python examples/aiogram_bot.py                  # Redis: state survives a restart
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Chat, Message, Update, User

from valerie.infrastructure import BackendUnavailableError, SessionStore, get_session_store
from valerie.integrations.aiogram import ValerieEventIsolation, ValerieStorage


class Booking(StatesGroup):
    """The conversation: where to, then how many travellers."""

    destination = State()
    travellers = State()


def booking_router() -> Router:
    """The handlers; each keeps the conversation's state and data through FSMContext."""
    router = Router()

    @router.message(F.text == "/book")
    async def start(message: Message, state: FSMContext) -> Any:
        await state.set_state(Booking.destination)
        return message.answer("Where to?")

    @router.message(Booking.destination)
    async def destination(message: Message, state: FSMContext) -> Any:
        await state.update_data(destination=message.text)  # atomic across bot processes
        await state.set_state(Booking.travellers)
        return message.answer(f"{message.text}, lovely. How many travellers?")

    @router.message(Booking.travellers)
    async def travellers(message: Message, state: FSMContext) -> Any:
        data = await state.update_data(travellers=message.text)
        await state.clear()
        return message.answer(f"Booked: {data['destination']} for {data['travellers']}.")

    return router


def message(number: int, text: str) -> Update:
    """What Telegram would send for a private message from user 7."""
    return Update(
        update_id=number,
        message=Message(
            message_id=number,
            date=datetime.now(UTC),
            chat=Chat(id=7, type="private"),
            from_user=User(id=7, is_bot=False, first_name="Ada"),
            text=text,
        ),
    )


async def bot_process(store: SessionStore, updates: list[Update]) -> None:
    """One run of the bot: a new Dispatcher (as after a restart) on the shared store."""
    dispatcher = Dispatcher(
        storage=ValerieStorage(store, close_store=False),
        events_isolation=ValerieEventIsolation(store, timeout=30, wait=10),
    )
    dispatcher.include_router(booking_router())
    bot = Bot("42:EXAMPLE-TOKEN-NEVER-USED")
    try:
        for update in updates:
            assert update.message is not None
            print(f"user: {update.message.text}")
            reply = await dispatcher.feed_update(bot, update)
            print(f"bot:  {getattr(reply, 'text', reply)}")
    finally:
        await bot.session.close()


async def main() -> None:
    """Three messages, with a restart of the bot between the second and the third."""
    async with get_session_store() as store:
        print(f"store: {store!r}")
        await bot_process(store, [message(1, "/book"), message(2, "Lisbon")])
        print("-- the bot restarts --")
        await bot_process(store, [message(3, "two")])


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BackendUnavailableError as error:
        sys.exit(f"aiogram_bot: {error}")
