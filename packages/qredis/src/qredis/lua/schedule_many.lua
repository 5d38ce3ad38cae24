#!lua
-- schedule_many.lua: store one chunk of delayed tasks once and schedule them, all or nothing.
--
-- KEYS[1] msg      hash id -> signed payload
-- KEYS[2] delayed  zset id -> due time (ms, Redis clock)
-- KEYS[3] maxatt   hash id -> per-task attempt limit
-- KEYS[4] prio     hash id -> priority level (levels other than 0)
-- ARGV[1] delay in ms   ARGV[2] priority level ("0": the default)
-- ARGV[3..] id1, payload1, limit1, id2, payload2, limit2, ... (limit "" for the default)
--
-- An id whose payload is already stored is skipped (HSETNX semantics, as enqueue.lua), so a
-- chunk re-sent after a lost reply changes nothing. Ready tasks take the faster path of
-- qredis/bulk.py instead. Returns how many tasks were scheduled.
-- No allow-oom flag: past maxmemory Redis refuses the whole script before it writes anything.
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local queued = 0
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[1], id, ARGV[i + 1]) == 1 then
    if ARGV[i + 2] ~= '' then
      redis.call('HSET', KEYS[3], id, ARGV[i + 2])
    end
    if ARGV[2] ~= '0' then
      redis.call('HSET', KEYS[4], id, ARGV[2])
    end
    redis.call('ZADD', KEYS[2], due, id)
    queued = queued + 1
  end
end
return queued
