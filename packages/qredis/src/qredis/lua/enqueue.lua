#!lua
-- enqueue.lua: store one payload once and queue its id (or schedule it).
--
-- KEYS[1] ready    the ready list of the task's priority level (LPUSH here; consumers take
--                  from the right end)
-- KEYS[2] msg      hash id -> signed payload
-- KEYS[3] delayed  zset id -> due time (ms, Redis clock)
-- KEYS[4] maxatt   hash id -> per-task attempt limit
-- KEYS[5] levels   zset of the priority levels other than 0 that may hold tasks
-- KEYS[6] prio     hash id -> priority level (only for levels other than 0)
-- KEYS[7] marker   zset consumers block on: one member, added whenever a task is ready
--                  (every script that queues a task runs this body with all seven KEYS:
--                  fire, enqueue_absent, enqueue_unique, chain_start, chain_ack)
-- ARGV[1] id   ARGV[2] payload   ARGV[3] delay in ms (0: ready now)
-- ARGV[4] attempt limit for this task, or "" for the queue's default
-- ARGV[5] priority level, -100..100 ("0" or absent: the default level)
--
-- Returns 1 if queued, 0 if a payload is already stored under the id: a client that retries
-- after a dropped connection changes nothing (HSETNX semantics).
-- No allow-oom flag: past maxmemory Redis refuses the whole script before it writes anything.
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  return 0
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
end
local level = ARGV[5] or '0'
if level ~= '0' then
  redis.call('HSET', KEYS[6], ARGV[1], level)
end
local delay = tonumber(ARGV[3])
if delay > 0 then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + delay,
    ARGV[1])
else
  redis.call('LPUSH', KEYS[1], ARGV[1])
  if level ~= '0' then
    redis.call('ZADD', KEYS[5], level, level)
  end
  redis.call('ZADD', KEYS[7], 0, '0')
end
return 1
