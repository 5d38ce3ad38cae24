#!lua flags=allow-oom
-- ack.lua: forget finished tasks whose fencing token is still current.
--
-- KEYS[1] tokens    hash id -> current fencing token
-- KEYS[2] msg       hash id -> payload
-- KEYS[3] attempts  hash id -> deliveries so far
-- KEYS[4] maxatt    hash id -> per-task attempt limit
-- KEYS[4+i]         the in-flight list of the consumer that holds task i
-- ARGV[2i-1], ARGV[2i]  id and token of task i
--
-- Returns 1 per task acked, 0 where the token is stale (the task was reaped, released or
-- redelivered since) or the task is not in that consumer's list; a 0 changes nothing.
-- allow-oom: acks free memory, so they must work when Redis is full.
local out = {}
for i = 1, #ARGV / 2 do
  local id = ARGV[2 * i - 1]
  local current = redis.call('HGET', KEYS[1], id)
  if current and current == ARGV[2 * i] and redis.call('LREM', KEYS[4 + i], -1, id) > 0 then
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
