"""The one place that imports OpenTelemetry, so that the store needs it only when asked."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from ..errors import MissingDependencyError
from . import names

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter, MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider

_INSTALL = (
    "OpenTelemetry is not installed; install the extra: pip install 'valerie[otel]' "
    "(or pip install -e '.[otel]' from a checkout)"
)


def _version() -> str:
    try:
        return version("valerie")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "0"


def meter_from(provider: MeterProvider | None) -> Meter:
    """The store's meter from `provider`, or from the global meter provider."""
    try:
        from opentelemetry import metrics
    except ImportError as missing:
        raise MissingDependencyError(_INSTALL) from missing
    if provider is None:
        return metrics.get_meter(names.METER_NAME, _version())
    return provider.get_meter(names.METER_NAME, _version())


def tracer_from(provider: TracerProvider | None) -> Tracer:
    """The store's tracer from `provider`, or from the global tracer provider."""
    try:
        from opentelemetry import trace
    except ImportError as missing:
        raise MissingDependencyError(_INSTALL) from missing
    if provider is None:
        return trace.get_tracer(names.METER_NAME, _version())
    return provider.get_tracer(names.METER_NAME, _version())
