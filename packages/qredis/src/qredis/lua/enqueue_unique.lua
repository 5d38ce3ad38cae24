-- enqueue_unique.lua: queue a unique task unless a live task holds its lock (enqueue.lua's
-- own body, the local function enqueue(KEYS, ARGV), is prepended when the script is loaded).
--
-- KEYS[1..7] enqueue.lua's KEYS for the task's priority level
-- KEYS[8]    the lock: a string holding the id of the task that has it
-- KEYS[9]    dead: zset of dead-lettered ids
-- ARGV[1..4] enqueue.lua's ARGV (id, payload, delay ms, attempt limit)
-- ARGV[5]    the lock's time to live, ms
-- ARGV[6]    the task's priority level (enqueue.lua's ARGV[5])
--
-- Returns the id of the task that holds the lock: the one given (queued now), or a live one's
-- (nothing queued). A task is live while its payload is stored and it is not dead-lettered:
-- queued, delayed or in flight; so the lock is released, in effect, by the very step that
-- acks the task (which deletes its payload), and a task whose cluster died holds it until
-- the reaper has given it to another worker and it ended there.
local holder = redis.call('GET', KEYS[8])
if holder and holder ~= ARGV[1] and redis.call('HEXISTS', KEYS[2], holder) == 1
    and not redis.call('ZSCORE', KEYS[9], holder) then
  return holder
end
redis.call('SET', KEYS[8], ARGV[1], 'PX', ARGV[5])
enqueue({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]},
  {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]})
return ARGV[1]
