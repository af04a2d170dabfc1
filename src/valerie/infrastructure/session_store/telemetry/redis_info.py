"""The seed's three Redis signals: memory against `maxmemory`, evictions and expirations.

A `RedisInfoSampler` reads `INFO memory` and `INFO stats` every `interval` seconds in one
background task and reports the last reading through observable OpenTelemetry instruments
(`redis.memory.used`, `redis.maxmemory`, `redis.keys.evicted`, `redis.keys.expired`: the
OpenTelemetry Collector's names). On a cluster it reads every primary and reports each one
with `server.address` and `server.port`: one full node is what evicts. One command pair per
server and interval, whatever the traffic: its cost is bounded. Where `INFO` is refused (a
managed Redis, an ACL without `+info`), it says so once in the log and carries on; the store
never notices.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..errors import AccessDeniedError, InvalidArgumentError, SessionStoreError
from . import names
from .providers import meter_from

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

logger = logging.getLogger("valerie.session_store.telemetry")

InfoReader = Callable[[], Awaitable[Mapping[str, Mapping[str, str]]]]
"""Returns the fields of `INFO memory` and `INFO stats`, by name, for each server: under `""`
for a single server, under `host:port` for each primary of a cluster."""


@dataclass(frozen=True, slots=True)
class InfoSample:
    """One reading of the server's memory and key counters."""

    used_memory: int
    maxmemory: int
    evicted_keys: int
    expired_keys: int
    monotonic: float
    """When it was read (`time.monotonic()`), for rates."""

    @property
    def memory_ratio(self) -> float | None:
        """`used_memory / maxmemory`, or None when the server has no `maxmemory`."""
        return self.used_memory / self.maxmemory if self.maxmemory else None


def parse_info(text: str) -> dict[str, str]:
    """Read the `field:value` lines of an `INFO` reply; section headers and blanks are skipped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(":")
            fields[name] = value
    return fields


def sample_from(fields: Mapping[str, str], monotonic: float) -> InfoSample:
    """Build a sample from `INFO` fields; a field the server does not report counts as 0."""
    return InfoSample(
        used_memory=int(fields.get("used_memory", 0)),
        maxmemory=int(fields.get("maxmemory", 0)),
        evicted_keys=int(fields.get("evicted_keys", 0)),
        expired_keys=int(fields.get("expired_keys", 0)),
        monotonic=monotonic,
    )


def total(samples: Iterable[InfoSample], monotonic: float) -> InfoSample:
    """The sum of several servers' samples (a cluster's primaries), taken at `monotonic`.

    Its `maxmemory` is 0 (no limit) when any server has none.
    """
    samples = list(samples)
    limits = [sample.maxmemory for sample in samples]
    return InfoSample(
        used_memory=sum(sample.used_memory for sample in samples),
        maxmemory=sum(limits) if all(limits) else 0,
        evicted_keys=sum(sample.evicted_keys for sample in samples),
        expired_keys=sum(sample.expired_keys for sample in samples),
        monotonic=monotonic,
    )


def rate(before: InfoSample, after: InfoSample, field: str) -> float:
    """The per-second rate of a counter between two samples (0 across a server restart)."""
    elapsed = after.monotonic - before.monotonic
    grown = int(getattr(after, field)) - int(getattr(before, field))
    return grown / elapsed if elapsed > 0 and grown > 0 else 0.0


class RedisInfoSampler:
    """Reads the server's `INFO` in one background task and reports the seed's three signals.

    Off unless created and started: `async with RedisInfoSampler.for_store(store): ...`, or
    `start()` then `stop()`. Pool saturation comes with the store's own metrics
    (`db.client.connection.*`), not from here.
    """

    def __init__(
        self,
        read_info: InfoReader,
        *,
        interval: float = 15.0,
        meter_provider: MeterProvider | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """Create a sampler; nothing is read until `start()` or `sample()`.

        Args:
            read_info: Returns the fields of `INFO memory` and `INFO stats`, by server.
            interval: Seconds between two readings (at least 0.1).
            meter_provider: Where the instruments live; the global provider by default.
            attributes: Added to every reading (`db.system.name` is always `redis`).

        Raises:
            InvalidArgumentError: `interval` is not a number of seconds of at least 0.1.
            MissingDependencyError: `opentelemetry-api` is not installed.
        """
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0.1:
            raise InvalidArgumentError(
                f"interval must be a number of seconds of at least 0.1, got {interval!r}"
            )
        self._read_info = read_info
        self.interval = float(interval)
        self._attributes: dict[str, str] = {names.DB_SYSTEM_NAME: "redis", **(attributes or {})}
        self.last: InfoSample | None = None
        """The last reading (on a cluster, the sum over its primaries)."""
        self.previous: InfoSample | None = None
        self.last_by_server: dict[str, InfoSample] = {}
        self.previous_by_server: dict[str, InfoSample] = {}
        """The last reading of each server (`""` for a single one, else `host:port`)."""
        self._denied_logged = False
        self._task: asyncio.Task[None] | None = None
        meter = meter_from(meter_provider)
        meter.create_observable_gauge(
            names.REDIS_MEMORY_USED,
            [self._observe("used_memory")],
            unit="By",
            description="Memory the Redis server uses (INFO used_memory).",
        )
        meter.create_observable_gauge(
            names.REDIS_MAXMEMORY,
            [self._observe("maxmemory")],
            unit="By",
            description="The server's maxmemory; 0 means no limit (INFO maxmemory).",
        )
        meter.create_observable_counter(
            names.REDIS_KEYS_EVICTED,
            [self._observe("evicted_keys")],
            unit="{key}",
            description="Keys the server evicted to stay under maxmemory (INFO evicted_keys).",
        )
        meter.create_observable_counter(
            names.REDIS_KEYS_EXPIRED,
            [self._observe("expired_keys")],
            unit="{key}",
            description="Keys the server removed when their TTL ran out (INFO expired_keys).",
        )

    @classmethod
    def for_store(cls, store: Any, **options: Any) -> RedisInfoSampler:
        """A sampler reading the `INFO` of a `RedisSessionStore`'s servers.

        Its primary, or each primary of a cluster.
        """
        return cls(store.backend.server_info, **options)

    def _observe(self, field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        from opentelemetry.metrics import Observation

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(int(getattr(sample, field)), self._server_attributes(server))
                for server, sample in self.last_by_server.items()
            ]

        return observe

    def _server_attributes(self, server: str) -> dict[str, str | int]:
        if not server:
            return dict(self._attributes)
        host, _, port = server.rpartition(":")
        return {**self._attributes, names.SERVER_ADDRESS: host, names.SERVER_PORT: int(port)}

    async def sample(self) -> InfoSample | None:
        """Read `INFO` once and keep it as the last sample; None when it could not be read.

        On a cluster the sample returned (and kept as `last`) is the sum over its primaries;
        `last_by_server` keeps each one.
        """
        try:
            by_server = await self._read_info()
        except AccessDeniedError:
            self.last_by_server = {}  # report nothing rather than an old reading
            if not self._denied_logged:
                self._denied_logged = True
                logger.warning(
                    "Redis refused INFO to the session store (a managed Redis or an ACL "
                    "without +info): the redis.* memory and eviction metrics stay empty; "
                    "the store itself is not affected"
                )
            return None
        except SessionStoreError as error:
            logger.debug("INFO could not be read this time: %s", type(error).__name__)
            self.last_by_server = {}  # report nothing rather than an old reading
            return None
        now = time.monotonic()
        self.previous_by_server = self.last_by_server
        self.last_by_server = {
            server: sample_from(fields, now) for server, fields in by_server.items()
        }
        self.previous, self.last = self.last, total(self.last_by_server.values(), now)
        return self.last

    def rates(self) -> dict[str, float]:
        """Evictions and expirations per second between the last two samples.

        On a cluster, the sum of each primary's own rate: a primary that is new (a failover)
        or restarted counts 0 until its next reading.
        """
        return {
            field: sum(
                rate(before, self.last_by_server[server], field)
                for server, before in self.previous_by_server.items()
                if server in self.last_by_server
            )
            for field in ("evicted_keys", "expired_keys")
        }

    def start(self) -> None:
        """Start the background task (one per sampler); starting it twice changes nothing."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="valerie-redis-info-sampler"
            )

    async def stop(self) -> None:
        """Stop the background task and wait for it to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():  # our own caller was cancelled, not just the task
                    raise

    async def _run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
