-- fire.lua: fire one schedule for one due time, at most once, and advance it: one atomic step.
-- (Loaded with enqueue.lua's body in front of it as the local function `enqueue(KEYS, ARGV)`,
-- see qredis.scripts, so a firing is queued exactly as any task is.)
--
-- KEYS[1] index    the schedule's due-time index (zset id -> due ms)
-- KEYS[2] sched    the schedule's hash (rev, repeats, last_task, last_due)
-- KEYS[3] fired    zset of the due times this schedule has fired (the newest ARGV[6] kept)
-- KEYS[4..] enqueue.lua's KEYS
-- ARGV[1] id   ARGV[2] due ms (as read from the index)   ARGV[3] rev the caller computed from
-- ARGV[4] next due ms, or "" when this is the last firing   ARGV[5] repeats after this firing
-- ARGV[6] fired due times to keep   ARGV[7] the firing's task id   ARGV[8..] enqueue.lua's ARGV
--
-- Returns 1 if the firing was queued; 2 if this due time had already fired (the schedule is
-- only advanced: say a definition written back from a stale copy set an old due time again);
-- 0 if the schedule is no longer due at ARGV[2] or was changed since the caller read it (another
-- cluster fired it first, or it was edited): nothing is done. The firing's task id is derived from
-- (schedule, due time), and the marker in `fired` outlives the task.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 0
end
if redis.call('HGET', KEYS[2], 'rev') ~= ARGV[3] then
  return 0
end
local result = 2
if not redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  local ekeys, eargv = {}, {}
  for i = 4, #KEYS do
    ekeys[#ekeys + 1] = KEYS[i]
  end
  for i = 8, #ARGV do
    eargv[#eargv + 1] = ARGV[i]
  end
  enqueue(ekeys, eargv)
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[6]) + 1))
  redis.call('HSET', KEYS[2], 'last_task', ARGV[7], 'last_due', ARGV[2])
  result = 1
end
redis.call('HSET', KEYS[2], 'repeats', ARGV[5])
if ARGV[4] == '' or ARGV[5] == '0' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
end
return result
