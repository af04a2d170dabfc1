"""Throughput, scaling and memory of valerie's session stores, against raw redis-py and peers.

Run from the repository's root with `make bench` (or `python -m benchmarks [--quick]
[--only SCENARIO ...]`). It starts its own `redis-server` on a free loopback port (never 6379),
and a Redis Cluster for the cluster scenario, and prints, per scenario, medians, spreads and
ratios to baselines measured in the same run, then the targets met and missed. Every run writes
its results to `benchmarks/results/<UTC date>-<mode>.json`.

- `harness`: timed calls, interleaved rounds, paired ratios, spreads: the noise model.
- `contestants`: the stores under test, each used the way its own users use it.
- `scenarios/`: one module per family of measurements (throughput, update, batches, cluster,
  scaling, memory).
- `targets`: each goal as data: what it measures, its bound, the issue it comes from.
- `report`: the printed report and the results file.
- `servers`: the private servers, `redis-benchmark`, the server's connection counters.
- `workload`: the ~2 KB chatbot state and the session ids.
"""
