#!lua flags=allow-oom
-- dead_letter.lua: take one claimed task out of circulation, keeping payload and reason.
--
-- KEYS[1] tokens    hash id -> current fencing token
-- KEYS[2] inflight  the in-flight list of the consumer that holds the task
-- KEYS[3] dead      zset id -> time of death (ms)
-- KEYS[4] deadinfo  hash id -> JSON {reason, attempts}
-- KEYS[5] attempts  hash id -> deliveries so far
-- ARGV[1] id   ARGV[2] token   ARGV[3] reason
--
-- Returns 1, or 0 (nothing changed) when the token is stale.
local id = ARGV[1]
local current = redis.call('HGET', KEYS[1], id)
if not current or current ~= ARGV[2] or redis.call('LREM', KEYS[2], -1, id) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local attempts = tonumber(redis.call('HGET', KEYS[5], id) or '0')
redis.call('HDEL', KEYS[1], id)
redis.call('HDEL', KEYS[5], id)
redis.call('ZADD', KEYS[3], now, id)
redis.call('HSET', KEYS[4], id, cjson.encode({reason = ARGV[3], attempts = attempts}))
return 1
