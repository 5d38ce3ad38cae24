#!lua
-- dead_trim.lua: bound the dead letters: drop those older than a time-to-live, then the
-- oldest beyond a cap, with everything kept for them (payload, reason, counts).
--
-- KEYS[1] dead        zset id -> time of death (ms)
-- KEYS[2] deadinfo    hash id -> JSON {reason, attempts}
-- KEYS[3] msg         hash id -> payload
-- KEYS[4] attempts    hash id -> deliveries so far
-- KEYS[5] maxatt      hash id -> per-task attempt limit
-- KEYS[6] unrecorded  zset id -> time: dead letters owed a record (owed no more once gone)
-- ARGV[1] time-to-live in ms
-- ARGV[2] cap: most dead letters kept
-- ARGV[3] most dead letters dropped in this call (the caller calls again while it is reached)
--
-- Returns how many dead letters were dropped.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, limit)
if #ids < limit then
  local over = redis.call('ZCARD', KEYS[1]) - #ids - tonumber(ARGV[2])
  if over > 0 then
    local oldest = redis.call('ZRANGE', KEYS[1], #ids, #ids + math.min(over, limit - #ids) - 1)
    for i = 1, #oldest do
      ids[#ids + 1] = oldest[i]
    end
  end
end
for s = 1, #ids, 1000 do
  local part = {unpack(ids, s, math.min(s + 999, #ids))}
  redis.call('ZREM', KEYS[1], unpack(part))
  redis.call('HDEL', KEYS[2], unpack(part))
  redis.call('HDEL', KEYS[3], unpack(part))
  redis.call('HDEL', KEYS[4], unpack(part))
  redis.call('HDEL', KEYS[5], unpack(part))
  redis.call('ZREM', KEYS[6], unpack(part))
end
return #ids
