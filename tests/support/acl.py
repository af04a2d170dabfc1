"""Redis ACL users limited to the keys under one prefix."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from tests.support.deployment import DeploymentError
from tests.support.redis_server import RedisServer
from tests.support.resp import call_server

DENIED_COMMANDS = (
    "flushdb", "flushall", "keys", "config", "debug", "shutdown", "acl", "module", "monitor",
    "replicaof", "slaveof", "failover", "swapdb", "migrate", "restore",
)  # fmt: skip
"""What an ACL user made by `create_acl_user` may not run: whole-database and admin commands."""


@dataclass(frozen=True)
class AclUser:
    """A Redis user limited to keys under one prefix, as made by `create_acl_user`."""

    username: str
    password: str = field(repr=False)
    key_pattern: str
    url: str = field(repr=False)


def create_acl_user(
    server: RedisServer,
    *more_servers: RedisServer,
    prefix: str,
    username: str | None = None,
    password: str | None = None,
    denied: Sequence[str] = DENIED_COMMANDS,
) -> AclUser:
    """Create (or replace) a user allowed only keys starting with `prefix` and no `denied`
    command, on `server` and each of `more_servers`; return it with a URL for `server`.

    ACLs are per server and not replicated: pass every data node of a deployment (the Sentinel
    replica, every Cluster node) for the user to survive a failover. A restarted server has
    forgotten the user (nothing is persisted). Glob characters in `prefix` are escaped, so they
    match only themselves.

    Args:
        server: The server whose URL (with this user's credentials) is returned.
        *more_servers: Other servers to create the same user on.
        prefix: The key prefix the user is limited to (`~<prefix>*`).
        username: The user's name; a random one if not given.
        password: The user's password; a random one if not given.
        denied: Commands to take away from `+@all`.
    """
    username = username or f"valerie-{secrets.token_hex(4)}"
    password = password or secrets.token_urlsafe(16)
    escaped = "".join(f"\\{char}" if char in "*?[]\\" else char for char in prefix)
    key_pattern = f"~{escaped}*"
    rules = ["reset", "on", f">{password}", key_pattern, "+@all", *(f"-{c}" for c in denied)]
    for target in (server, *more_servers):
        # Over RESP rather than redis-cli, so the password never shows in a process list.
        reply = call_server(target, "ACL", "SETUSER", username, *rules)
        if reply != "OK":
            raise DeploymentError(f"ACL SETUSER {username} on {target.port} answered {reply!r}")
    scheme, _, rest = server.url.partition("://")
    url = f"{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{rest}"
    return AclUser(username, password, key_pattern, url)
