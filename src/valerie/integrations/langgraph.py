"""A LangGraph checkpoint saver on our stores: plain Redis, Sentinel, Cluster, or memory.

```python
store = RedisSessionStore(redis_url=..., prefix="agent:")
graph = builder.compile(checkpointer=ValerieCheckpointSaver(store, max_checkpoints=20))
```

Needs the `langgraph` extra: `pip install 'valerie[langgraph]'`.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from valerie.infrastructure.session_store import (
    DELETE,
    TTL,
    InvalidArgumentError,
    SessionState,
    SessionStore,
    SessionStoreError,
    VersionConflictError,
)

from ._missing import missing

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_id,
        get_checkpoint_metadata,
        writes_sort_key,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as error:  # pragma: no cover - exercised in a child process without langgraph
    raise missing("langgraph", "langgraph-checkpoint") from error

__all__ = ["CheckpointConflictError", "SyncCallError", "ValerieCheckpointSaver"]

_T = TypeVar("_T")

# One index entry per checkpoint: id, parent id, metadata (serializer type, base64), run id.
_Entry = list[Any]
_Keep = Callable[[list[_Entry]], list[_Entry]]


class CheckpointConflictError(VersionConflictError):
    """Another writer advanced the thread since this run read it; the checkpoint was not kept.

    Raised by `aput` when the new checkpoint's parent is not the thread's latest checkpoint
    (in its namespace): two runs on one thread at once, the second would silently fork the
    conversation. Re-run the turn from the latest checkpoint, serialize the runs of a thread
    (e.g. with `store.lock(thread_id)`), or make the saver with `linear=False` to allow
    branching from older checkpoints (time travel).
    """


class SyncCallError(SessionStoreError, RuntimeError):
    """A synchronous method was called on the event loop thread the saver's store runs on."""


class ValerieCheckpointSaver(BaseCheckpointSaver[int]):
    """Keeps LangGraph checkpoints in one of our session stores.

    Layout (session ids in the store): per thread an index `<prefix>{<thread>}` listing each
    namespace's checkpoints (id, parent, metadata), one session per checkpoint
    (`<prefix>{<thread>}:cp:<ns>:<id>`: the checkpoint and its channel values) and one per
    checkpoint's pending writes (`...:w:<ns>:<id>`); the thread, namespace and id are
    percent-encoded, so the `{thread}` hash tag puts a thread's keys on one Cluster slot. Needs
    no Redis module: plain Redis 6.2+, Sentinel and Cluster. Values go through LangGraph's
    serializer (`serde`, JSON-plus/msgpack by default, never pickle unless you configure it).

    Guarantees: the index is changed only through the store's atomic `update()`; with
    `linear=True` a checkpoint with a parent is kept only if that parent is the latest
    checkpoint of its namespace, so two writers on one thread never interleave silently (the
    loser gets `CheckpointConflictError` and its checkpoint is removed; a checkpoint without a
    parent starts a new root, as in LangGraph's own savers); each namespace keeps its last
    `max_checkpoints` checkpoints (older ones and their writes are deleted by the write that
    displaces them); every session expires `ttl` after it was last written.

    Args:
        store: The session store.
        serde: LangGraph serializer; defaults to the base class's `JsonPlusSerializer`.
        ttl: Lifetime of a thread's sessions after their last write; `None` means the store's
            default TTL.
        max_checkpoints: Checkpoints kept per thread and namespace (`None`: no bound).
        linear: Refuse a checkpoint whose parent is not the latest (see above); `False`
            allows branching from older checkpoints (time travel) without that guard.
        prefix: Starts every session id this saver uses, so it can share a store.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        serde: SerializerProtocol | None = None,
        ttl: TTL | None = None,
        max_checkpoints: int | None = 100,
        linear: bool = True,
        prefix: str = "langgraph:",
    ) -> None:
        super().__init__(serde=serde)
        if max_checkpoints is not None and (
            isinstance(max_checkpoints, bool)
            or not isinstance(max_checkpoints, int)
            or max_checkpoints < 1
        ):
            raise InvalidArgumentError(
                f"max_checkpoints must be an int >= 1 or None, not {max_checkpoints!r}; "
                "pass how many checkpoints to keep per thread, e.g. 20"
            )
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise InvalidArgumentError(
                "prefix must be a str without '{' or '}' (they would change the Cluster hash "
                "tag of a thread's keys); pass e.g. 'langgraph:'"
            )
        self.store = store
        self.ttl = ttl
        self.max_checkpoints = max_checkpoints
        self.linear = linear
        self.prefix = prefix
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None

    # Session ids.

    def _index_id(self, thread_id: str) -> str:
        return f"{self.prefix}{{{_quote(thread_id)}}}"

    def _doc_id(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return f"{self._index_id(thread_id)}:cp:{_quote(ns)}:{_quote(checkpoint_id)}"

    def _writes_id(self, thread_id: str, ns: str, checkpoint_id: str) -> str:
        return f"{self._index_id(thread_id)}:w:{_quote(ns)}:{_quote(checkpoint_id)}"

    def _dropped_ids(
        self, thread_id: str, dropped: builtins.list[tuple[str, str]]
    ) -> builtins.list[str]:
        ids = []
        for ns, checkpoint_id in dropped:
            ids += [
                self._doc_id(thread_id, ns, checkpoint_id),
                self._writes_id(thread_id, ns, checkpoint_id),
            ]
        return ids

    # Serialization through LangGraph's serializer, as JSON-safe [type, base64].

    def _dump(self, value: Any) -> builtins.list[str]:
        kind, data = self.serde.dumps_typed(value)
        return [kind, base64.b64encode(data).decode("ascii")]

    def _load(self, typed: builtins.list[str]) -> Any:
        return self.serde.loads_typed((typed[0], base64.b64decode(typed[1])))

    # The async API.

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Return the checkpoint `config` names (its `checkpoint_id`, else the latest)."""
        self._remember_loop()
        thread_id, ns = _thread_and_ns(config)
        checkpoint_id = get_checkpoint_id(config)
        index = await self.store.load(self._index_id(thread_id))
        entries = _entries(index, ns)
        if checkpoint_id is None:
            entry = entries[-1] if entries else None
        else:
            entry = next((e for e in entries if e[0] == checkpoint_id), None)
        if entry is None:
            return None
        found = await self._tuples(thread_id, ns, [entry])
        return found[0] if found else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Yield checkpoints, newest first per namespace, that match every criterion.

        Args:
            config: Its `thread_id` (and `checkpoint_ns`, `checkpoint_id` if present) narrow
                the listing; `None` lists every thread of this saver (a walk of the store).
            filter: Metadata keys and the values they must equal.
            before: Only checkpoints older than this config's `checkpoint_id`.
            limit: At most this many.
        """
        self._remember_loop()
        if config is None:
            thread_ids: AsyncIterator[str] = self._all_threads()
            ns_wanted, id_wanted = None, None
        else:
            thread_ids = _one(_thread_and_ns(config)[0])
            ns_wanted = config["configurable"].get("checkpoint_ns")
            id_wanted = get_checkpoint_id(config)
        before_id = None if before is None else get_checkpoint_id(before)
        remaining = limit
        async for thread_id in thread_ids:
            index = await self.store.load(self._index_id(thread_id))
            for ns, entries in ((index or {}).get("ns") or {}).items():
                if ns_wanted is not None and ns != ns_wanted:
                    continue
                chosen: builtins.list[_Entry] = []
                for entry in reversed(entries):
                    if remaining is not None and len(chosen) >= remaining:
                        break
                    if id_wanted is not None and entry[0] != id_wanted:
                        continue
                    if before_id is not None and entry[0] >= before_id:
                        continue
                    if filter and not _matches(self._load(entry[2]), filter):
                        continue
                    chosen.append(entry)
                for found in await self._tuples(thread_id, ns, chosen):
                    yield found
                    if remaining is not None:
                        remaining -= 1
                if remaining is not None and remaining <= 0:
                    return

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint as the child of `config`'s `checkpoint_id`; return its config.

        Raises:
            CheckpointConflictError: With `linear=True`, the parent is not the latest
                checkpoint of the thread's namespace; nothing was kept.
        """
        self._remember_loop()
        thread_id, ns = _thread_and_ns(config)
        parent_id = get_checkpoint_id(config)
        checkpoint_id = checkpoint["id"]
        stripped = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        values = checkpoint.get("channel_values") or {}
        blobs = {
            channel: self._dump(values[channel])
            for channel in checkpoint["channel_versions"]
            if channel in values
        }
        inherited = [
            channel
            for channel in checkpoint["channel_versions"]
            if channel not in values and channel not in new_versions
        ]
        if inherited and parent_id is not None:
            parent = await self.store.load(self._doc_id(thread_id, ns, parent_id))
            parent_blobs = (parent or {}).get("blobs") or {}
            blobs.update({c: parent_blobs[c] for c in inherited if c in parent_blobs})
        full_metadata = get_checkpoint_metadata(config, metadata)
        doc_id = self._doc_id(thread_id, ns, checkpoint_id)
        await self.store.save(
            doc_id, {"checkpoint": self._dump(stripped), "blobs": blobs}, self.ttl
        )
        entry = [checkpoint_id, parent_id, self._dump(full_metadata), full_metadata.get("run_id")]
        dropped: builtins.list[tuple[str, str]] = []
        conflict = False

        def add(index: SessionState | None) -> SessionState:
            nonlocal conflict
            dropped.clear()
            namespaces = dict((index or {}).get("ns") or {})
            entries = [e for e in namespaces.get(ns, []) if e[0] != checkpoint_id]
            replaced = len(entries) != len(namespaces.get(ns, []))
            head = entries[-1][0] if entries else None
            # A checkpoint without a parent starts the thread over (a new root), as
            # LangGraph's savers allow; only a child must extend the latest checkpoint.
            stale = parent_id is not None and head is not None and head != parent_id
            conflict = self.linear and not replaced and stale
            if conflict and index is not None:  # a stale parent implies an index
                # Not raised here: update() may be trying a cached copy of the index, and
                # must get to compare it with the stored one. Writing it back unchanged
                # is no change.
                return index
            entries.append(entry)
            entries.sort(key=lambda e: str(e[0]))
            if self.max_checkpoints is not None and len(entries) > self.max_checkpoints:
                cut = len(entries) - self.max_checkpoints
                dropped.extend((ns, e[0]) for e in entries[:cut])
                entries = entries[cut:]
            namespaces[ns] = entries
            return {"ns": namespaces}

        await self.store.update(self._index_id(thread_id), add, self.ttl)
        if conflict:
            await self.store.delete(doc_id)
            raise CheckpointConflictError(
                "another writer added a checkpoint to this thread since this run read it "
                "(its parent is no longer the latest); re-run from the latest checkpoint, "
                "run one writer per thread at a time, or pass linear=False to allow "
                "branching"
            )
        if dropped:
            await self.store.delete_many(self._dropped_ids(thread_id, dropped))
        return _config(thread_id, ns, checkpoint_id)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for `config`'s checkpoint; atomic, idempotent.

        A write already stored for the same task and index is kept, except the special
        channels (error, interrupt...), which are replaced, as in LangGraph's own savers.
        """
        self._remember_loop()
        thread_id, ns = _thread_and_ns(config)
        checkpoint_id = config["configurable"]["checkpoint_id"]
        new: builtins.list[builtins.list[Any]] = [
            [task_id, WRITES_IDX_MAP.get(channel, idx), channel, self._dump(value), task_path]
            for idx, (channel, value) in enumerate(writes)
        ]

        def merge(current: SessionState | None) -> SessionState:
            stored = {(w[0], w[1]): w for w in (current or {}).get("writes") or []}
            for write in new:
                key = (write[0], write[1])
                if write[1] >= 0 and key in stored:
                    continue
                stored[key] = write
            return {"writes": list(stored.values())}

        await self.store.update(self._writes_id(thread_id, ns, checkpoint_id), merge, self.ttl)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of the thread, in every namespace."""
        self._remember_loop()
        await self._remove(str(thread_id), lambda entries: [])

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) made by these runs, on every thread."""
        self._remember_loop()
        wanted = {str(run_id) for run_id in run_ids}
        if not wanted:
            return
        async for thread_id in self._all_threads():
            await self._remove(
                thread_id, lambda entries: [e for e in entries if e[3] not in wanted]
            )

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of a thread to another thread id.

        The target's existing checkpoints stay; copied ones with the same ids replace them.
        """
        self._remember_loop()
        source, target = str(source_thread_id), str(target_thread_id)
        index = await self.store.load(self._index_id(source))
        namespaces = (index or {}).get("ns") or {}
        pairs = [
            (self._doc_id(source, ns, e[0]), self._doc_id(target, ns, e[0]))
            for ns, entries in namespaces.items()
            for e in entries
        ] + [
            (self._writes_id(source, ns, e[0]), self._writes_id(target, ns, e[0]))
            for ns, entries in namespaces.items()
            for e in entries
        ]
        if not pairs:
            return
        loaded = await self.store.load_many([old for old, _ in pairs])
        copies = {new: loaded[old] for old, new in pairs if loaded[old] is not None}
        await self.store.save_many(copies, self.ttl)  # type: ignore[arg-type]

        def merged(current: SessionState | None) -> SessionState:
            result = dict((current or {}).get("ns") or {})
            for ns, entries in namespaces.items():
                ids = {e[0] for e in entries}
                kept = [e for e in result.get(ns, []) if e[0] not in ids]
                result[ns] = sorted(kept + entries, key=lambda e: str(e[0]))
            return {"ns": result}

        await self.store.update(self._index_id(target), merged, self.ttl)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads: keep each namespace's latest checkpoint, or delete them all.

        `strategy="keep_latest"` keeps the latest, `"delete"` removes every checkpoint.

        Raises:
            InvalidArgumentError: `strategy` is neither; nothing was deleted.
        """
        self._remember_loop()
        if strategy not in ("keep_latest", "delete"):
            raise InvalidArgumentError(
                f"strategy must be 'keep_latest' or 'delete', not {strategy!r}"
            )
        for thread_id in thread_ids:
            if strategy == "delete":
                await self._remove(str(thread_id), lambda entries: [])
            else:
                await self._remove(str(thread_id), lambda entries: entries[-1:])

    # The sync API the base class expects: the async one, run on the store's event loop.

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Synchronous `aget_tuple` (from another thread than the store's event loop)."""
        return self._sync(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Synchronous `alist`; collects the listing, then yields it."""

        async def collect() -> builtins.list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._sync(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Synchronous `aput`."""
        return self._sync(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Synchronous `aput_writes`."""
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Synchronous `adelete_thread`."""
        self._sync(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Synchronous `adelete_for_runs`."""
        self._sync(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Synchronous `acopy_thread`."""
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Synchronous `aprune`."""
        self._sync(self.aprune(thread_ids, strategy=strategy))

    # Helpers.

    async def _tuples(
        self, thread_id: str, ns: str, entries: builtins.list[_Entry]
    ) -> builtins.list[CheckpointTuple]:
        """Build the tuples of these index entries in one round trip; skip expired ones."""
        if not entries:
            return []
        ids = []
        for entry in entries:
            ids += [self._doc_id(thread_id, ns, entry[0]), self._writes_id(thread_id, ns, entry[0])]
        loaded = await self.store.load_many(ids)
        found = []
        for entry in entries:
            doc = loaded[self._doc_id(thread_id, ns, entry[0])]
            if doc is None:
                continue  # expired, or pruned while this read ran
            writes = (loaded[self._writes_id(thread_id, ns, entry[0])] or {}).get("writes") or []
            writes = sorted(writes, key=lambda w: writes_sort_key(w[4], w[0], w[1]))
            checkpoint = self._load(doc["checkpoint"])
            checkpoint["channel_values"] = {
                channel: self._load(blob) for channel, blob in (doc.get("blobs") or {}).items()
            }
            found.append(
                CheckpointTuple(
                    config=_config(thread_id, ns, entry[0]),
                    checkpoint=checkpoint,
                    metadata=self._load(entry[2]),
                    parent_config=None if entry[1] is None else _config(thread_id, ns, entry[1]),
                    pending_writes=[(w[0], w[2], self._load(w[3])) for w in writes],
                )
            )
        return found

    async def _remove(
        self, thread_id: str, keep: Callable[[builtins.list[_Entry]], builtins.list[_Entry]]
    ) -> None:
        """Keep of each namespace's entries what `keep(entries)` returns; delete the rest."""
        dropped: builtins.list[tuple[str, str]] = []

        def without(index: SessionState | None) -> Any:
            dropped.clear()
            namespaces = {}
            for ns, entries in ((index or {}).get("ns") or {}).items():
                kept = keep(entries)
                dropped.extend((ns, e[0]) for e in entries if e not in kept)
                if kept:
                    namespaces[ns] = kept
            return {"ns": namespaces} if namespaces else DELETE

        await self.store.update(self._index_id(thread_id), without, self.ttl)
        if dropped:
            await self.store.delete_many(self._dropped_ids(thread_id, dropped))

    async def _all_threads(self) -> AsyncIterator[str]:
        start = len(self.prefix) + 1
        async for session_id in self.store.iter_ids(match=_glob_escape(self.prefix) + "{*}"):
            yield unquote(session_id[start:-1])

    def _remember_loop(self) -> None:
        self._loop = asyncio.get_running_loop()

    def _sync(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            coroutine.close()
            raise SyncCallError(
                "a synchronous method of ValerieCheckpointSaver was called from a running "
                "event loop, which it would block; call the async method (aget_tuple, aput, "
                "...) or use graph.ainvoke()"
            )
        loop = self._loop if self._loop is not None and self._loop.is_running() else None
        if loop is None:
            loop = self._own_loop or self._start_own_loop()
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result()

    def _start_own_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="valerie-saver", daemon=True).start()
        self._own_loop = loop
        return loop


def _quote(text: str) -> str:
    return quote(text, safe="")


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _thread_and_ns(config: RunnableConfig) -> tuple[str, str]:
    configurable = config.get("configurable") or {}
    if configurable.get("thread_id") is None:
        raise InvalidArgumentError(
            "the config has no configurable.thread_id; pass "
            '{"configurable": {"thread_id": ...}} when invoking the graph'
        )
    return str(configurable["thread_id"]), str(configurable.get("checkpoint_ns") or "")


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _entries(index: SessionState | None, ns: str) -> list[_Entry]:
    return list(((index or {}).get("ns") or {}).get(ns) or [])


def _matches(metadata: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(metadata.get(key) == value for key, value in wanted.items())


async def _one(item: str) -> AsyncIterator[str]:
    yield item
