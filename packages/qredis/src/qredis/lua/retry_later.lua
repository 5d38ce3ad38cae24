#!lua flags=allow-oom
-- retry_later.lua: put one claimed task back, to be delivered again after a delay.
--
-- KEYS[1] tokens    hash id -> current fencing token
-- KEYS[2] inflight  the in-flight list of the consumer that holds the task
-- KEYS[3] delayed   zset id -> due time (ms)
-- KEYS[4] queue     list of ready ids
-- KEYS[5] msg       hash id -> payload
-- KEYS[6] attempts  hash id -> deliveries so far
-- ARGV[1] id   ARGV[2] token   ARGV[3] delay in ms
-- ARGV[4] (optional) the payload of the next attempt (a retry after an exception)
--
-- Returns 1, or 0 (nothing changed) when the token is stale. Without ARGV[4] the attempt
-- count is kept; with it the stored payload is replaced and the delivery count restarts.
local id = ARGV[1]
local current = redis.call('HGET', KEYS[1], id)
if not current or current ~= ARGV[2] or redis.call('LREM', KEYS[2], -1, id) == 0 then
  return 0
end
redis.call('HDEL', KEYS[1], id)
if ARGV[4] then
  redis.call('HSET', KEYS[5], id, ARGV[4])
  redis.call('HDEL', KEYS[6], id)
end
local delay = tonumber(ARGV[3])
if delay > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[3], now + delay, id)
else
  redis.call('LPUSH', KEYS[4], id)
end
return 1
