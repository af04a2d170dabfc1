"""The benchmark's scenarios, one module per family, in the order a full run takes them.

A new benchmark is one module here (a `SCENARIO` whose `run` returns a `Section`), one line in
`SCENARIOS`, and its goals as data in `benchmarks.targets`.
"""

from benchmarks.harness import Scenario
from benchmarks.scenarios import (
    batches,
    cluster,
    encryption,
    erasure,
    memory,
    observers,
    scaling,
    telemetry,
    throughput,
    typed,
    update,
)

SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        throughput.SCENARIO,
        update.SCENARIO,
        encryption.SCENARIO,
        erasure.SCENARIO,
        batches.SCENARIO,
        cluster.SCENARIO,
        scaling.SCENARIO,
        memory.SCENARIO,
        observers.SCENARIO,
        typed.SCENARIO,
        telemetry.SCENARIO,
    )
}
