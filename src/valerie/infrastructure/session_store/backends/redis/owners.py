"""The owner index on Redis: one sorted set per owner, beside the sessions.

The key is `keys.owner_key(prefix, owner)`; its members are session ids, scored with the
deadline (Unix milliseconds) of the last write that named the owner.

Every command touches one key, so it works the same on one server and on a Cluster, where the
index and the sessions live on different nodes. What keeps a live session in its owner's index
is the order of steps, not a transaction (see `backend.Owners`):

- a write indexes the id first (`ZADD`), writes the session, then checks the entry is still
  there (`ZSCORE`) and puts it back if an erasure took it meanwhile;
- pruning removes an entry only if its deadline passed more than `GRACE_MS` ago, its session is
  gone, and its score is still the one read (a write that indexed it again changed the score);
- erasure deletes each session and removes its entry: on one server both in one script (a
  write landing later puts its own entry back); on a Cluster in steps (the entry only if
  unchanged), then it puts back the entry of any session a concurrent write brought back.

Each owned write also records its owner beside the session (`keys.owned_by_key`, kept
`GRACE_MS` beyond the write's TTL). Listing and erasure skip an entry whose session now
records another owner: a session written for a new owner is no longer the previous one's.
A session with no record (written before records existed, or kept alive by refreshes beyond
its record) is listed for every owner whose index holds it, as before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .keys import owned_by_key, owner_key, session_key

if TYPE_CHECKING:
    from .backend import RedisBackend

GRACE_MS = 60_000
"""How long after its deadline an entry is kept at least: more than the clock skew between
the hosts that index and prune, so that a prune never mistakes a fresh entry for a stale one."""
_PRUNED_PER_WRITE = 8
_BATCH = 1000

# Removes each (member, score) pair given only if the member still has that score.
_REMOVE_UNCHANGED = """
local removed = 0
for i = 1, #ARGV, 2 do
    if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == tonumber(ARGV[i + 1]) then
        removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
    end
end
return removed
"""


# Erasure on one server: each session and its entry go together, atomically, so a write that
# lands later is the only way back, and its own check puts its entry back.
# KEYS: the index, then each session and its owner record; ARGV: the owner, then the ids.
# A session whose record names another owner is not deleted, only its stale entry removed.
_ERASE = """
local erased = {}
for i = 1, #ARGV - 1 do
    local owned_by = redis.call('GET', KEYS[2 * i + 1])
    if (not owned_by) or owned_by == ARGV[1] then
        if redis.call('DEL', KEYS[2 * i]) == 1 then erased[#erased + 1] = ARGV[i + 1] end
    end
    redis.call('ZREM', KEYS[1], ARGV[i + 1])
end
return erased
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


class RedisOwnerIndex:
    """The owner index of one `RedisBackend` (see the module docstring)."""

    __slots__ = ("_backend",)

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend

    def _key(self, owner: str) -> str:
        return owner_key(self._backend.prefix, owner)

    async def index(self, owner: str, session_ids: list[str], ttl_seconds: int) -> None:
        """ZADD the ids, and prune up to a few stale entries found in the same round trip."""
        key = self._key(owner)
        now = _now_ms()
        deadline = now + ttl_seconds * 1000
        prefix = self._backend.prefix
        replies = await self._backend._run(
            [
                ("ZADD", key, *(item for sid in session_ids for item in (deadline, sid))),
                (
                    "ZRANGEBYSCORE",
                    key,
                    "-inf",
                    now - GRACE_MS,
                    "WITHSCORES",
                    "LIMIT",
                    0,
                    _PRUNED_PER_WRITE,
                ),
                *(
                    ("SET", owned_by_key(prefix, sid), owner, "PX", ttl_seconds * 1000 + GRACE_MS)
                    for sid in session_ids
                ),
            ],
            write=True,
        )
        stale = replies[1]
        if stale:
            await self._prune(key, _pairs(stale))

    async def confirm(self, owner: str, session_ids: list[str], ttl_seconds: int) -> None:
        """Put entries back if an erasure removed them while the sessions were being written."""
        key = self._key(owner)
        scores = await self._backend._execute("ZMSCORE", key, *session_ids)
        missing = [sid for sid, score in zip(session_ids, scores, strict=True) if score is None]
        if missing:
            deadline = _now_ms() + ttl_seconds * 1000
            prefix = self._backend.prefix
            await self._backend._run(
                [
                    ("ZADD", key, *(item for sid in missing for item in (deadline, sid))),
                    *(
                        (
                            "SET",
                            owned_by_key(prefix, sid),
                            owner,
                            "PX",
                            ttl_seconds * 1000 + GRACE_MS,
                            "NX",
                        )
                        for sid in missing
                    ),
                ],
                write=True,
            )

    async def owned(self, owner: str) -> list[str]:
        """Return the live ids; prune the stale entries met."""
        key = self._key(owner)
        pairs = _pairs(await self._backend._execute("ZRANGE", key, 0, -1, "WITHSCORES"))
        live: list[str] = []
        dead: list[tuple[bytes, float]] = []
        prefix = self._backend.prefix
        for chunk in _chunks(pairs):
            ids = [member.decode() for member, _ in chunk]
            found = await self._backend._run(
                [("EXISTS", session_key(prefix, session_id)) for session_id in ids]
            )
            owners = await self._owners_of(ids)
            for (member, score), session_id, exists, owned_by in zip(
                chunk, ids, found, owners, strict=True
            ):
                if not exists:
                    dead.append((member, score))
                elif owned_by in (None, owner):
                    live.append(session_id)
        if dead:
            await self._prune(key, dead)
        return live

    async def erase(self, owner: str) -> list[str]:
        """Delete the sessions and their entries; keep the entry of a session written again."""
        key = self._key(owner)
        prefix = self._backend.prefix
        erased: list[str] = []
        if not self._backend._on_cluster():
            members: list[bytes] = await self._backend._execute("ZRANGE", key, 0, -1)
            for start in range(0, len(members), _BATCH):
                batch = members[start : start + _BATCH]
                keys = [
                    session_key(prefix, member.decode())
                    if record == 0
                    else owned_by_key(prefix, member.decode())
                    for member in batch
                    for record in (0, 1)
                ]
                gone = await self._backend._execute(
                    "EVAL",
                    _ERASE,
                    1 + len(keys),
                    key,
                    *keys,
                    owner,
                    *batch,
                    retry=False,
                    write=True,
                )
                erased += [member.decode() for member in gone]
            return erased
        pairs = _pairs(await self._backend._execute("ZRANGE", key, 0, -1, "WITHSCORES"))
        # On a cluster the index and the sessions are on different nodes: in steps.
        for chunk in _chunks(pairs):
            ids = [member.decode() for member, _ in chunk]
            mine = [
                session_id
                for session_id, owned_by in zip(ids, await self._owners_of(ids), strict=True)
                if owned_by in (None, owner)
            ]
            if mine:
                deleted = await self._backend._run(
                    [("UNLINK", session_key(prefix, session_id)) for session_id in mine],
                    write=True,
                )
                erased += [sid for sid, done in zip(mine, deleted, strict=True) if done]
            await self._remove_unchanged(key, chunk)
            # A write that indexed before the ZRANGE and landed after the UNLINK (or recorded
            # the owner after the check) is live now: its entry goes back (the writer's own
            # check covers a write landing later).
            back = await self._backend._run(
                [("PTTL", session_key(prefix, session_id)) for session_id in ids]
            )
            now_owned_by = await self._owners_of(ids)
            again = [
                (session_id, left)
                for session_id, left, owned_by in zip(ids, back, now_owned_by, strict=True)
                if left > 0 and owned_by in (None, owner)
            ]
            if again:
                now = _now_ms()
                await self._backend._run(
                    [("ZADD", key, now + left, session_id) for session_id, left in again],
                    write=True,
                )
        return erased

    async def _owners_of(self, session_ids: list[str]) -> list[str | None]:
        """Return the owner each session's last owned write recorded, None where none is."""
        prefix = self._backend.prefix
        replies = await self._backend._run(
            [("GET", owned_by_key(prefix, session_id)) for session_id in session_ids]
        )
        return [None if reply is None else reply.decode() for reply in replies]

    async def _prune(self, key: str, candidates: list[tuple[bytes, float]]) -> None:
        """Remove the entries whose deadline is long past and whose session is gone."""
        limit = _now_ms() - GRACE_MS
        old = [(member, score) for member, score in candidates if score < limit]
        if not old:
            return
        found = await self._backend._run(
            [("EXISTS", session_key(self._backend.prefix, member.decode())) for member, _ in old]
        )
        gone = [pair for pair, exists in zip(old, found, strict=True) if not exists]
        if gone:
            await self._remove_unchanged(key, gone)

    async def _remove_unchanged(self, key: str, pairs: list[tuple[bytes, float]]) -> None:
        if pairs:
            flat: list[Any] = [item for pair in pairs for item in pair]
            await self._backend._script(_REMOVE_UNCHANGED, key, *flat)


def _pairs(reply: list[Any]) -> list[tuple[bytes, float]]:
    """Pair a `WITHSCORES` reply's members with their scores.

    RESP3 answers with [member, score] pairs, RESP2 with a flat list of strings.
    """
    if reply and isinstance(reply[0], list):
        return [(member, float(score)) for member, score in reply]
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]


def _chunks(pairs: list[tuple[bytes, float]]) -> list[list[tuple[bytes, float]]]:
    return [pairs[start : start + _BATCH] for start in range(0, len(pairs), _BATCH)]
