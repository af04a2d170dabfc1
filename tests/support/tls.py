"""A TLS-only `redis-server` with a test CA, server and client certificates made by `openssl`."""

from __future__ import annotations

import functools
import secrets
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

from tests.support.resp import HOST, Access, AccessedServer


class TlsUnsupported(RuntimeError):
    """The installed `redis-server`, or the machine, cannot run a TLS server."""


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = valerie test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
# P-256 keys: generated in milliseconds, where RSA takes a noticeable fraction of a second.
_NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@functools.cache
def redis_supports_tls(executable: str = "redis-server") -> bool:
    """Return whether `executable` was built with TLS (it then knows the `tls-port` directive).

    Probed by starting it with neither a TCP nor a TLS port: a TLS build exits at once saying it
    is configured to listen nowhere; a build without TLS rejects `tls-port` as a bad directive.
    """
    with tempfile.TemporaryDirectory(prefix="valerie-tls-probe-") as directory:
        try:
            probe = subprocess.run(
                [executable, "--port", "0", "--tls-port", "0", "--bind", HOST, "--save", "",
                 "--appendonly", "no", "--dir", directory],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return True  # it accepted the directive and kept running (run() has killed it)
    return "Bad directive" not in probe.stdout + probe.stderr


def _make_certificates(directory: Path) -> None:
    """Write a CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    directory.mkdir(mode=0o700)
    (directory / "openssl.cnf").write_text(_OPENSSL_CONFIG)

    def openssl(*args: str) -> None:
        done = subprocess.run(
            ["openssl", *args],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise TlsUnsupported(f"openssl {' '.join(args)} failed:\n{done.stderr[-2000:]}")

    openssl(
        "req", "-x509", "-config", "openssl.cnf", "-extensions", "ca", *_NEW_KEY,
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=valerie test CA",
    )  # fmt: skip
    for name, common_name in (("server", "localhost"), ("client", "valerie test client")):
        openssl(
            "req", "-new", "-config", "openssl.cnf", *_NEW_KEY,
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={common_name}",
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-set_serial", str(secrets.randbits(63)), "-days", "2",
            "-extfile", "openssl.cnf", "-extensions", name, "-out", f"{name}.crt",
        )  # fmt: skip


def check_tls_support() -> None:
    executable = shutil.which("redis-server")
    if executable is not None and not redis_supports_tls(executable):
        raise TlsUnsupported(
            f"{executable} was built without TLS support (it rejects `tls-port`); TLS tests "
            "need a build with BUILD_TLS=yes, such as Debian's and Homebrew's redis packages"
        )
    if shutil.which("openssl") is None:
        raise TlsUnsupported("the `openssl` command is not on PATH; it makes the test certs")


def make_certificates(directory: Path) -> Path:
    """Make a test CA, a server and a client certificate in `directory` (new); return it.

    Several `TlsRedisServer`s given the same directory trust each other, as a deployment's
    servers must (replication and Sentinel over TLS).

    Raises:
        TlsUnsupported: `redis-server` cannot do TLS, or `openssl` is missing or failed.
    """
    check_tls_support()
    _make_certificates(directory)
    return directory


class TlsRedisServer(AccessedServer):
    """A `redis-server` that speaks TLS only, with a test CA, server and client certificates.

    The certificates are made with the `openssl` command in the server's temp directory (or
    taken from `certificates`, made by `make_certificates`), and the server certificate is
    valid for `IP:127.0.0.1` and `DNS:localhost`, so clients can verify it with `ca_cert` and
    hostname checking on. `port` is the TLS port; plain TCP is off. Outgoing connections
    (replication, a Sentinel's links) use TLS too, with the client certificate.

    Attributes:
        ca_cert: The test CA's certificate (`ssl_ca_certs`).
        client_cert: A client certificate signed by the CA (`ssl_certfile`).
        client_key: Its key (`ssl_keyfile`).
        server_cert: The server's certificate.
        server_key: The server's key.
        auth_clients: `tls-auth-clients`: "yes" (a client certificate is required),
            "optional" (checked if sent) or "no".
    """

    def __init__(
        self,
        port: int | None = None,
        *extra_args: str,
        auth_clients: Literal["yes", "optional", "no"] = "optional",
        certificates: Path | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        check_tls_support()
        super().__init__(port, *extra_args, access=Access())
        self.auth_clients = auth_clients
        tls = certificates or self.directory / "tls"
        self.ca_cert = tls / "ca.crt"
        self.server_cert, self.server_key = tls / "server.crt", tls / "server.key"
        self.client_cert, self.client_key = tls / "client.crt", tls / "client.key"
        if certificates is None:
            try:
                _make_certificates(tls)
            except BaseException:
                self.close()
                raise
        self.set_access(Access(self.ssl_context(), login))
        self.extra_args = (
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.server_cert),
            "--tls-key-file", str(self.server_key),
            "--tls-ca-cert-file", str(self.ca_cert),
            "--tls-auth-clients", auth_clients,
            "--tls-replication", "yes",
            "--tls-client-cert-file", str(self.client_cert),
            "--tls-client-key-file", str(self.client_key),
            *extra_args,
        )  # fmt: skip

    @property
    def url(self) -> str:
        """`rediss://127.0.0.1:<port>/0` (the client must still be given `ca_cert`)."""
        return f"rediss://{HOST}:{self.port}/0"

    def verified_url(self, client_cert: bool = False) -> str:
        """`url` with `ssl_ca_certs` (and the client certificate) as redis-py query parameters."""
        query = {"ssl_ca_certs": str(self.ca_cert)}
        if client_cert:
            query |= {"ssl_certfile": str(self.client_cert), "ssl_keyfile": str(self.client_key)}
        return f"{self.url}?{urlencode(query)}"

    def ssl_context(self, client_cert: bool = True) -> ssl.SSLContext:
        """A client context that trusts the test CA and (by default) presents the client cert."""
        context = ssl.create_default_context(cafile=self.ca_cert)
        if client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def command(self, *args: str) -> bytes:
        """Send one command with redis-cli over TLS and return its raw output."""
        return subprocess.run(
            [
                "redis-cli", "-p", str(self.port), "--tls", "--cacert", str(self.ca_cert),
                "--cert", str(self.client_cert), "--key", str(self.client_key), "--no-raw", *args,
            ],
            check=True,
            capture_output=True,
            timeout=10,
        ).stdout  # fmt: skip
