"""Days until the server's TLS certificate expires (standalone `rediss://` URLs)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from typing import Any

from .findings import Finding, failed, passed, warned
from .nodes import TIMEOUT

WARN_DAYS = 14


def _days_left(host: str, port: int, options: dict[str, Any]) -> float:
    context = ssl.create_default_context(
        cafile=options.get("ssl_ca_certs"), capath=options.get("ssl_ca_path")
    )
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    # Only the expiry is read here; whether the name matches is the connection's own check.
    context.check_hostname = False
    with (
        socket.create_connection((host, port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        certificate = tls.getpeercert()
    assert certificate is not None
    expires = ssl.cert_time_to_seconds(str(certificate["notAfter"]))
    return (expires - time.time()) / 86400


async def check_certificate(host: str, port: int, options: dict[str, Any]) -> Finding:
    """WARN within 14 days of the certificate's expiry, FAIL once it has expired."""
    if str(options.get("ssl_cert_reqs", "required")).lower() in ("none", "0"):
        return warned(
            "tls-certificate",
            "ssl_cert_reqs=none: the certificate is not "
            "verified, nor its expiry checked; give ssl_ca_certs and verify it",
        )
    try:
        days = await asyncio.to_thread(_days_left, host, port, options)
    except (OSError, ssl.SSLError) as error:
        return warned("tls-certificate", f"could not read the server certificate ({error})")
    if days < 0:
        return failed(
            "tls-certificate",
            f"the server certificate expired {-days:.0f} days "
            "ago: clients that verify it cannot connect; renew it",
        )
    if days < WARN_DAYS:
        return warned(
            "tls-certificate", f"the server certificate expires in {days:.0f} days: renew it"
        )
    return passed("tls-certificate", f"the server certificate is valid for {days:.0f} more days")
