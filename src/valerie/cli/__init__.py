"""`valerie-sessions`: the operator's command line over a session store.

Inspect, export, import and clear sessions, and `doctor`, which finds the server settings that
lose sessions. Needs the `cli` extra (Click and rich) and, for Redis, the `redis` extra.
"""
