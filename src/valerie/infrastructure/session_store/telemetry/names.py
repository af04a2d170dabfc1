"""The names of every instrument and attribute the store reports, in one place.

The OpenTelemetry database semantic conventions (`db.client.*`) name what they cover: the
duration of an operation and the connection pool. The Redis `INFO` signals take the names of
the OpenTelemetry Collector's Redis receiver (`redis.*`), so one dashboard reads either. What
only a session store knows (hits, conflicts, leases, state sizes) is under `valerie.session.*`.
The Grafana dashboard in `monitoring/` is checked against this module by a test.
"""

from __future__ import annotations

from typing import Final

# Instruments: the database semantic conventions.
OPERATION_DURATION: Final = "db.client.operation.duration"
CONNECTION_COUNT: Final = "db.client.connection.count"
CONNECTION_MAX: Final = "db.client.connection.max"
CONNECTION_PENDING_REQUESTS: Final = "db.client.connection.pending_requests"
CONNECTION_WAIT_TIME: Final = "db.client.connection.wait_time"
CONNECTION_TIMEOUTS: Final = "db.client.connection.timeouts"

# Instruments: what only a session store can tell.
LOADS: Final = "valerie.session.loads"
CONFLICTS: Final = "valerie.session.conflicts"
UPDATE_RETRIES: Final = "valerie.session.update.retries"
LEASE_WAIT_TIME: Final = "valerie.session.lease.wait_time"
LEASES: Final = "valerie.session.leases"
STATE_SIZE: Final = "valerie.session.state.size"
STATE_FAILURES: Final = "valerie.session.state.failures"

# Instruments: the Redis server, read from INFO by the sampler.
REDIS_MEMORY_USED: Final = "redis.memory.used"
REDIS_MAXMEMORY: Final = "redis.maxmemory"
REDIS_KEYS_EVICTED: Final = "redis.keys.evicted"
REDIS_KEYS_EXPIRED: Final = "redis.keys.expired"

# Attributes.
DB_SYSTEM_NAME: Final = "db.system.name"
DB_OPERATION_NAME: Final = "db.operation.name"
ERROR_TYPE: Final = "error.type"
POOL_NAME: Final = "db.client.connection.pool.name"
CONNECTION_STATE: Final = "db.client.connection.state"
LOAD_OUTCOME: Final = "valerie.session.load.outcome"
LEASE_OUTCOME: Final = "valerie.session.lease.outcome"
UPDATE_ATTEMPTS: Final = "valerie.session.update.attempts"
DECRYPTION_REASON: Final = "valerie.session.decryption.reason"
SERVER_ADDRESS: Final = "server.address"
"""A cluster node's host, on the sampler's readings (one per primary)."""
SERVER_PORT: Final = "server.port"

# The histogram buckets the conventions advise for `db.client.operation.duration`.
DURATION_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
# Lease waits last up to `wait` seconds (10 s by default): the same scale, a little longer.
LEASE_WAIT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)
# State sizes in bytes: 256 B to 4 MiB, by powers of four.
SIZE_BUCKETS: Final = tuple(float(256 * 4**n) for n in range(8))

METER_NAME: Final = "valerie.session_store"
"""The instrumentation scope of every instrument and span."""

INSTRUMENTS: Final = frozenset(
    {
        OPERATION_DURATION,
        CONNECTION_COUNT,
        CONNECTION_MAX,
        CONNECTION_PENDING_REQUESTS,
        CONNECTION_WAIT_TIME,
        CONNECTION_TIMEOUTS,
        LOADS,
        CONFLICTS,
        UPDATE_RETRIES,
        LEASE_WAIT_TIME,
        LEASES,
        STATE_SIZE,
        STATE_FAILURES,
        REDIS_MEMORY_USED,
        REDIS_MAXMEMORY,
        REDIS_KEYS_EVICTED,
        REDIS_KEYS_EXPIRED,
    }
)
"""Every instrument the store can register (the sampler's only with a sampler)."""
