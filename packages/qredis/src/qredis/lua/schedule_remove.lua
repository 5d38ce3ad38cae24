#!lua
-- schedule_remove.lua: forget one schedule.
--
-- KEYS[1] all   KEYS[2] sched hash   KEYS[3] fired (zset of its fired due times)
-- KEYS[4] index the index the caller read from the hash ('index')
-- ARGV[1] id
--
-- Returns 1 if it existed, 0 if not, -1 if the hash moved to another index meanwhile (retry).
local index = redis.call('HGET', KEYS[2], 'index')
if index and index ~= KEYS[4] then
  return -1
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3])
return redis.call('SREM', KEYS[1], ARGV[1])
