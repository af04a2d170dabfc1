"""The Lua scripts behind the operations that must be atomic.

Each script touches one key, so it is atomic on standalone Redis and Cluster alike; except
MOVE, which only one server runs. They are
sent with EVAL rather than EVALSHA: the server caches the compiled script by its hash anyway,
and EVAL cannot fail with NOSCRIPT after a restart.
"""

WRITE_IF = """
local current = redis.call('GET', KEYS[1])
if current then
    if redis.sha1hex(current) ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= 'absent' then
    return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
"""Save if the stored bytes hash to ARGV[1] ('absent': no session): 1 if written, else 0."""

# Compares the bytes themselves (no hashing on either side) and, on a conflict, answers with
# the bytes stored now, so the next attempt needs no extra read.
SWAP = """
local current = redis.call('GET', KEYS[1])
local expected = ARGV[1] == '1'
if (current and expected and current == ARGV[2]) or (not current and not expected) then
    if ARGV[3] == '1' then
        redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[5])
    else
        redis.call('DEL', KEYS[1])
    end
    return {1}
end
if current then return {0, current} end
return {0}
"""
"""update's compare-and-set: {1} if swapped, else {0} or {0, the bytes stored now}."""

REMOVE_IF = """
local current = redis.call('GET', KEYS[1])
if not current then return 1 end
if redis.sha1hex(current) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
"""Delete if the stored bytes hash to ARGV[1] (or nothing is stored): 1, else 0."""

REPLACE = """
local current = redis.call('GET', KEYS[1])
if not current or redis.sha1hex(current) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""
"""Replace the value keeping its TTL if the stored bytes hash to ARGV[1]: 1, else 0."""

MOVE = """
local current = redis.call('GET', KEYS[1])
if not current then return 'missing' end
if redis.sha1hex(current) ~= ARGV[1] then return 'changed' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'exists' end
local left = redis.call('PTTL', KEYS[1])
if left <= 0 then return 'missing' end
redis.call('SET', KEYS[2], ARGV[2], 'PX', left)
redis.call('DEL', KEYS[1])
return 'moved'
"""
"""rotate_id on one server: move KEYS[1] (if it hashes to ARGV[1]) to KEYS[2] (if free) as
ARGV[2], keeping its TTL. Two keys: never used on a cluster, where they may be on two nodes."""

ACQUIRE_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
"""Take the lock for token ARGV[1] for ARGV[2] ms; taking it again renews it, so it may be
retried safely."""

RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""
"""Release the lock if token ARGV[1] holds it: 1, else 0 (sent once)."""

EXTEND_LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
"""Extend the lock to ARGV[2] ms if token ARGV[1] holds it: 1, else 0 (sent once)."""
