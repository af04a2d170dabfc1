"""Private `redis-server` processes on free loopback ports, for tests and benchmarks.

Never port 6379: the suite must not touch a server someone else uses.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.lifecycle import Started

INSTALL_HINT = (
    "redis-server is not on PATH, and the tests need a real one (they start their own on free "
    "ports). Install it: `apt-get install redis-server` (Debian/Ubuntu), `brew install redis` "
    "(macOS), or `dnf install redis` (Fedora), then run the tests again."
)


def _end_with_parent() -> Callable[[], None] | None:
    """What the child runs before redis-server so that it ends when its parent dies (Linux): a
    run killed outright (`make mutation` kills a mutant's run that overstays) leaves no server.

    Only from the main thread: the signal comes when the thread that started the child ends.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
    pr_set_pdeathsig = 1

    def end_with_parent() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return end_with_parent


class RedisServerMissing(RuntimeError):
    """`redis-server` is not installed."""


class UnmarkedRedisTest(RuntimeError):
    """A test without the `redis` marker tried to start a `redis-server`."""


_refusal: str | None = None


def refuse_new_servers(reason: str | None) -> None:
    """Make every new `RedisServer` raise `UnmarkedRedisTest(reason)`, or (None) allow them again.

    The test suite refuses servers while a test without the `redis` marker runs, so that a test
    that needs `redis-server` cannot forget the marker that `pytest -m "not redis"` relies on.
    """
    global _refusal
    _refusal = reason


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer(Started):
    """One `redis-server` on 127.0.0.1 that can be stopped, killed, frozen and restarted.

    It keeps nothing on disk, so a restart comes back empty, as after a crash without
    persistence.
    """

    def __init__(
        self, port: int | None = None, *extra_args: str, config_file: Path | None = None
    ) -> None:
        """Prepare (not start) a server.

        Args:
            port: The port to listen on; a free one if not given.
            *extra_args: More `--option value` arguments; they override the defaults.
            config_file: A config file to load first, for what the command line cannot say
                (a Sentinel's `sentinel monitor ...` lines). Sentinel rewrites its file, so it
                should live in this server's `directory` or another private one.

        Raises:
            UnmarkedRedisTest: Made by a test that lacks the `redis` marker.
            RedisServerMissing: `redis-server` is not on PATH.
        """
        if _refusal is not None:
            raise UnmarkedRedisTest(_refusal)
        executable = shutil.which("redis-server")
        if executable is None:
            raise RedisServerMissing(INSTALL_HINT)
        self.executable = executable
        self.port = port or free_port()
        self.extra_args = extra_args
        self.config_file = config_file
        self.directory = Path(tempfile.mkdtemp(prefix="valerie-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The `redis://` URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.spawn()
        self.wait_until_ready()

    def spawn(self) -> None:
        """Start the server process without waiting for it (to start several at once)."""
        # A primary writes an RDB file for each full sync to a replica (unless syncing
        # disklessly); loaded at a restart, it would bring data back.
        (self.directory / "dump.rdb").unlink(missing_ok=True)
        # The config file must come first; errors in it go to stderr, before the log is open.
        config = [str(self.config_file)] if self.config_file is not None else []
        with (self.directory / "stderr.log").open("wb") as stderr:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    *config,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.directory),
                    "--logfile", str(self.directory / "redis.log"),
                    *self.extra_args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=_end_with_parent(),
            )  # fmt: skip

    def wait_until_ready(self, timeout: float = 10) -> None:
        """Wait until the spawned server answers PING.

        Raises:
            RuntimeError: It exited (the message quotes its output) or stayed silent.
        """
        assert self.process is not None, "spawn() the server first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited:\n{self.output()}")
            if self.ping():
                return
            time.sleep(0.02)
        raise RuntimeError(
            f"redis-server on port {self.port} did not answer PING within {timeout} s"
        )

    def output(self, limit: int = 2000) -> str:
        """Return the end of what the server wrote to stderr and its log (to explain a failure)."""
        paths = (self.directory / "stderr.log", self.directory / "redis.log")
        texts = [path.read_text(errors="replace") for path in paths if path.exists()]
        return "".join(texts)[-limit:]

    def ping(self) -> bool:
        """Return whether the server answers PING right now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """Send one command with redis-cli and return its raw output (for test assertions)."""
        return subprocess.run(
            ["redis-cli", "-p", str(self.port), "--no-raw", *args],
            check=True,
            capture_output=True,
            timeout=10,
        ).stdout

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM) and wait for it to exit."""
        self._signal_and_wait(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        self._signal_and_wait(signal.SIGKILL)

    def freeze(self) -> None:
        """Stop the process (SIGSTOP): connections stay open but nothing answers."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Resume a frozen server (SIGCONT)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Kill the server and start a new, empty one on the same port."""
        self.kill()
        self.start()

    def _signal_and_wait(self, sig: signal.Signals) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGCONT)
        process.send_signal(sig)
        process.wait(timeout=10)

    def close(self) -> None:
        """Kill the server and remove its directory."""
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
