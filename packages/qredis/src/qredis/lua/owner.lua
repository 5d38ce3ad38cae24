#!lua flags=allow-oom
-- owner.lua: record which process runs a cluster (its host and its sentinel's pid and start
-- time), so a cluster on the same host can tell when that process is gone; list them all.
--
-- KEYS[1] owners       hash cluster id -> JSON owner record (written by the cluster)
-- KEYS[2] owners_seen  zset cluster id -> when it last recorded itself (ms, Redis clock)
-- ARGV[1] "record" or "remove"
-- ARGV[2] cluster id
-- ARGV[3] record: the JSON owner record
-- ARGV[4] record: forget records not written again for this many ms (clusters long gone
--         on other hosts: by then the reaper has taken their tasks back)
--
-- Returns, for "record", {cluster id, owner record, ...} of every cluster recorded; {} else.
if ARGV[1] == 'remove' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return {}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[2])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
for i = 1, #stale do
  redis.call('HDEL', KEYS[1], stale[i])
  redis.call('ZREM', KEYS[2], stale[i])
end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local record = redis.call('HGET', KEYS[1], id)
  if record then
    out[#out + 1] = id
    out[#out + 1] = record
  end
end
return out
