"""The Redis backend: standalone, Sentinel or Cluster, over redis-py's asyncio client.

Importing this package does not import `redis`; the client is built on first use.
"""

from .backend import DEFAULT_PREFIX, DEFAULT_REDIS_URL, LOCK_SUFFIX, RedisBackend
from .session_store import RedisSessionStore

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_REDIS_URL",
    "LOCK_SUFFIX",
    "RedisBackend",
    "RedisSessionStore",
]
