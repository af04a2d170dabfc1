"""Infrastructure for chatbots: the session store that keeps state between turns."""

from . import session_store
from .session_store import *  # noqa: F403 - one export list, kept in session_store

__all__ = session_store.__all__
