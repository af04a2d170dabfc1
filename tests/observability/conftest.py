from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.observability.readings import Telemetry, make_telemetry


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Providers of the test's own, so no test sees another's readings."""
    made = make_telemetry()
    yield made
    made.meter_provider.shutdown()
    made.tracer_provider.shutdown()
