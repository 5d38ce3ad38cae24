#!lua
-- schedule_put.lua: add or replace one schedule (its signed definition and its state).
--
-- KEYS[1] all      set of every schedule id of the queue
-- KEYS[2] sched    hash of one schedule: spec (signed definition), rev (revision), repeats,
--                  index (the index key it is due in), last_task, last_due
-- KEYS[3] index    the due-time index this schedule belongs in (zset id -> due ms)
-- KEYS[4] previous the index the caller read from the hash ('index'), or KEYS[3] if none
-- ARGV[1] id   ARGV[2] signed spec   ARGV[3] due ms, or "" for none (paused or done)
-- ARGV[4] repeats   ARGV[5] mode: "keep" keeps the state of a schedule stored with the same
--         spec; "replace" writes due and repeats unless all three are already what is given
--
-- Returns 1 if written, 0 if nothing changed, -1 if the hash moved to another index since the
-- caller read it (read again and retry). Every write bumps rev, so a firing computed from the
-- old definition is refused (fire.lua compares rev).
local previous = redis.call('HGET', KEYS[2], 'index')
if previous and previous ~= KEYS[4] then
  return -1
end
local spec = redis.call('HGET', KEYS[2], 'spec')
if spec == ARGV[2] then
  if ARGV[5] == 'keep' then
    return 0
  end
  local score = redis.call('ZSCORE', previous or KEYS[3], ARGV[1])
  local due = score and string.format('%d', tonumber(score)) or ''
  if due == ARGV[3] and redis.call('HGET', KEYS[2], 'repeats') == ARGV[4] then
    return 0
  end
end
if previous then
  redis.call('ZREM', KEYS[4], ARGV[1])
end
redis.call('HSET', KEYS[2], 'spec', ARGV[2], 'repeats', ARGV[4], 'index', KEYS[3])
redis.call('HINCRBY', KEYS[2], 'rev', 1)
if ARGV[3] ~= '' and ARGV[4] ~= '0' then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
