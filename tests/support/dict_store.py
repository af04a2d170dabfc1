"""A store written from scratch against `SessionStore`: only the four abstract methods."""

from __future__ import annotations

from typing import Any

from valerie.infrastructure import SessionStore
from valerie.infrastructure.session_store import SessionState


class DictStore(SessionStore):
    """Keeps states in a dict and implements nothing beyond `save`, `load`, `delete`, `exists`."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    async def save(
        self,
        session_id: str,
        state: Any,
        ttl: Any = None,
        *,
        if_version: Any = None,
        owner: Any = None,
    ) -> None:
        self.data[session_id] = dict(state)

    async def load(self, session_id: str, *, refresh_ttl: Any = False) -> SessionState | None:
        return self.data.get(session_id)

    async def delete(self, session_id: str, *, if_version: Any = None) -> None:
        self.data.pop(session_id, None)

    async def exists(self, session_id: str) -> bool:
        return session_id in self.data
