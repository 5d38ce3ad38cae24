#!lua flags=allow-oom
-- forget.lua: deregister consumers that stopped.
--
-- KEYS[1] consumers  zset consumer -> heartbeat deadline (ms)
-- KEYS[2] fetches    hash consumer -> its last claim (see fetch.lua)
-- KEYS[3] acks       hash consumer -> its last ack's answer (see ack.lua)
-- KEYS[3+i]          the in-flight list of consumer i
-- ARGV[i]            consumer i
--
-- A consumer that still holds tasks is not dropped (its work would be orphaned): its deadline
-- is set in the past instead, so the next reaper pass returns its tasks to the queue.
-- Returns how many consumers were removed outright.
local removed = 0
for i = 1, #ARGV do
  if redis.call('LLEN', KEYS[3 + i]) == 0 then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
  else
    redis.call('ZADD', KEYS[1], 0, ARGV[i])
  end
end
return removed
