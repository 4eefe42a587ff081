"""Lua scripts of the cluster's shared live state in Redis (see ``cluster.py`` for the key layout).

Layer: application (realcast); plain strings, no imports.

Each script touches the keys of one stream only, all named with the stream's hash tag
``{app|stream}``, so that on a Redis Cluster every script runs on one shard. Scripts run
atomically: two nodes changing the same stream's presence cannot interleave.
"""

from __future__ import annotations

from typing import Final

__all__ = ["HISTORY_ADD", "HISTORY_DELETE", "HISTORY_RECENT", "PRESENCE", "SLOW_MODE", "SNAPSHOT"]

# Presence of users in one stream, counted once over the whole cluster.
# KEYS[1] all:  hash user -> number of nodes where the user is present
# KEYS[2] mine: hash user -> username, the users present on this node
# KEYS[3] watch: hash of the stream's watch-time sums, peak and count version
# KEYS[4] starts: hash user -> wall time their cluster-wide session started
# ARGV[1] op: "+" (users arrive on this node), "-" (leave it), "sync" (this node's users are
#   exactly the listed ones), "reap" (this node is gone: remove all its users)
# ARGV[2] now (wall seconds), ARGV[3] "1" to keep watch-time sums (viewers) else "0" (chat)
# ARGV[4..] user, username, user, username...
# Returns {count, version, {user, username, +1|-1, ...}}: the users whose cluster-wide
# presence changed (first node to hold them, or last to let them go).
PRESENCE: Final = """
local op, now, track = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local changed = {}
local function arrive(user, name)
  if redis.call('HSETNX', KEYS[2], user, name) == 0 then return end
  if redis.call('HINCRBY', KEYS[1], user, 1) ~= 1 then return end
  changed[#changed + 1] = user; changed[#changed + 1] = name; changed[#changed + 1] = 1
  if track then
    redis.call('HSET', KEYS[4], user, ARGV[2])
    redis.call('HINCRBYFLOAT', KEYS[3], 'start_sum', ARGV[2])
  end
end
local function depart(user)
  local name = redis.call('HGET', KEYS[2], user)
  if not name then return end
  redis.call('HDEL', KEYS[2], user)
  if redis.call('HINCRBY', KEYS[1], user, -1) > 0 then return end
  redis.call('HDEL', KEYS[1], user)
  changed[#changed + 1] = user; changed[#changed + 1] = name; changed[#changed + 1] = -1
  if track then
    local start = tonumber(redis.call('HGET', KEYS[4], user))
    if start then
      redis.call('HDEL', KEYS[4], user)
      redis.call('HINCRBYFLOAT', KEYS[3], 'start_sum', tostring(-start))
      redis.call('HINCRBYFLOAT', KEYS[3], 'ended_seconds', tostring(math.max(now - start, 0)))
      redis.call('HINCRBY', KEYS[3], 'ended_count', 1)
    end
  end
end
if op == '+' then
  for i = 4, #ARGV, 2 do arrive(ARGV[i], ARGV[i + 1]) end
elseif op == '-' then
  for i = 4, #ARGV, 2 do depart(ARGV[i]) end
else
  local keep = {}
  if op == 'sync' then
    for i = 4, #ARGV, 2 do keep[ARGV[i]] = true end
  end
  for _, user in ipairs(redis.call('HKEYS', KEYS[2])) do
    if not keep[user] then depart(user) end
  end
  if op == 'sync' then
    for i = 4, #ARGV, 2 do arrive(ARGV[i], ARGV[i + 1]) end
  end
end
local count = redis.call('HLEN', KEYS[1])
local version = 0
if track then
  local peak = tonumber(redis.call('HGET', KEYS[3], 'peak') or '0')
  if count > peak then redis.call('HSET', KEYS[3], 'peak', count) end
  if redis.call('HEXISTS', KEYS[3], 'version') == 0 then
    -- A new stream, or a Redis that restarted empty: start from the server's clock in
    -- microseconds, above every version handed out before, or the nodes (which remember the
    -- last version they saw) would drop the resynchronised counts as stale.
    local t = redis.call('TIME')
    redis.call('HSET', KEYS[3], 'version', t[1] .. string.format('%06d', tonumber(t[2])))
  end
  version = redis.call('HINCRBY', KEYS[3], 'version', 1)
end
return {count, version, changed}
"""

# Analytics of one stream over the cluster.
# KEYS[1] viewers (PRESENCE's all), KEYS[2] watch, KEYS[3] rates: hash "m:<second>" / "r:<second>" -> count
# ARGV[1] now (wall seconds). Drops rate buckets older than the window.
# Returns strings (Lua numbers would be cut to integers):
# {viewers, peak, start_sum, ended_seconds, ended_count, messages, reactions}
SNAPSHOT: Final = """
local now = tonumber(ARGV[1])
local oldest = math.floor(now) - 60
local messages, reactions = 0, 0
local flat = redis.call('HGETALL', KEYS[3])
for i = 1, #flat, 2 do
  local second = tonumber(string.sub(flat[i], 3))
  if second and second > oldest then
    if string.sub(flat[i], 1, 1) == 'm' then
      messages = messages + tonumber(flat[i + 1])
    else
      reactions = reactions + tonumber(flat[i + 1])
    end
  else
    redis.call('HDEL', KEYS[3], flat[i])
  end
end
local w = redis.call('HMGET', KEYS[2], 'peak', 'start_sum', 'ended_seconds', 'ended_count')
return {tostring(redis.call('HLEN', KEYS[1])), w[1] or '0', w[2] or '0', w[3] or '0', w[4] or '0',
        tostring(messages), tostring(reactions)}
"""

# Chat history: KEYS[1] list of message ids (oldest first), KEYS[2] hash id -> message JSON.
# ARGV[1] id, ARGV[2] JSON, ARGV[3] how many to retain.
HISTORY_ADD: Final = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local excess = redis.call('LLEN', KEYS[1]) - tonumber(ARGV[3])
if excess > 0 then
  local old = redis.call('LPOP', KEYS[1], excess)
  redis.call('HDEL', KEYS[2], unpack(old))
end
return 1
"""

# ARGV[1] n: the newest n messages, oldest first, as JSON strings.
# Nodes append in the order their pipelines reach Redis, which can differ by a few messages from
# the order they were sent in; message ids sort by send time (ULID layout, see ids.py), so the
# newest 2n by arrival are sorted by id and the last n of those are the answer.
HISTORY_RECENT: Final = """
local n = tonumber(ARGV[1])
local ids = redis.call('LRANGE', KEYS[1], -2 * n, -1)
if #ids == 0 then return {} end
table.sort(ids)
local newest = {}
for i = math.max(#ids - n + 1, 1), #ids do newest[#newest + 1] = ids[i] end
return redis.call('HMGET', KEYS[2], unpack(newest))
"""

# ARGV[1] id. Returns 1 if the message was there (and is now gone), else 0.
HISTORY_DELETE: Final = """
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('LREM', KEYS[1], 1, ARGV[1])
return 1
"""

# Slow mode of one user in one stream: KEYS[1] the user's key, ARGV[1] interval in ms.
# Returns 0 when the user may send now (and starts their interval), else the ms to wait.
SLOW_MODE: Final = """
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX') then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then return 0 end
return left
"""
