"""`with` support for the test servers and proxies: entering starts one, leaving closes it."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closed:
    """Closed by `close()` when its `with` block ends, whatever happens in the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Started(Closed):
    """Started by `start()` when its `with` block begins, closed by `close()` when it ends."""

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self
