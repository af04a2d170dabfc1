"""Support code the tests and the benchmark import (`tests.support.<module>`), never run as tests.

- `redis_server`: one private `redis-server` on a free loopback port (never 6379).
- `resp`: a minimal RESP client of its own, for checks that must not trust redis-py.
- `deployment`, `sentinel`, `cluster`, `tls`, `acl`: real local Sentinel, Cluster and TLS
  deployments, and ACL users limited to a prefix.
- `fault_proxy`, `loop_proxy`: TCP proxies that lose, stall or rewrite traffic on demand.
- `backends`: the backends the contract suite runs on, listed once, and how to open each.
- `workers`, `children`: code run in child processes, and their environment.
- `properties`, `updates`, `paths`: Hypothesis profiles, update functions, the repository root.
"""
