"""Observability: OpenTelemetry metrics and traces, and the Redis `INFO` sampler.

Importing this package needs only the standard library; creating an observer or a sampler
needs the `otel` extra (`pip install 'valerie[otel]'`).
"""

from . import names
from .redis_info import InfoSample, RedisInfoSampler

__all__ = ["InfoSample", "RedisInfoSampler", "names"]
