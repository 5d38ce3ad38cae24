#!lua flags=allow-oom
-- retry_later.lua: put one claimed task back, to be delivered again after a delay.
--
-- KEYS[1] tokens    hash id -> current fencing token
-- KEYS[2] inflight  the in-flight list of the consumer that holds the task
-- KEYS[3] delayed   zset id -> due time (ms)
-- KEYS[4] queue     level 0's ready list (level L's: "<queue>:L")
-- KEYS[5] msg       hash id -> payload
-- KEYS[6] attempts  hash id -> deliveries so far
-- KEYS[7] prio      hash id -> level (levels other than 0)
-- KEYS[8] levels    zset of the levels other than 0 that may hold tasks
-- KEYS[9] marker    zset idle consumers block on
-- ARGV[1] id   ARGV[2] token   ARGV[3] delay in ms
-- ARGV[4] (optional) the payload of the next attempt (a retry after an exception)
--
-- Returns 1, or 0 (nothing changed) when the token is stale. Without ARGV[4] the attempt
-- count is kept; with it the stored payload is replaced and the delivery count restarts. The
-- priority level is kept. (Loaded with lib/levels.lua in front of it, see qredis.scripts.)
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
  redis.call('ZADD', KEYS[3], now_ms() + delay, id)
else
  local level = level_of(KEYS[7], id)
  redis.call('LPUSH', at_level(KEYS[4], level), id)
  announce(KEYS[8], KEYS[9], level)
end
return 1
