-- enqueue_unique.lua: queue a unique task unless a live task holds its lock (enqueue.lua's
-- own body, the local function enqueue(KEYS, ARGV), is prepended when the script is loaded).
--
-- KEYS[1..4] enqueue.lua's KEYS (queue, msg, delayed, maxatt)
-- KEYS[5]    the lock: a string holding the id of the task that has it
-- KEYS[6]    dead: zset of dead-lettered ids
-- ARGV[1..4] enqueue.lua's ARGV (id, payload, delay ms, attempt limit)
-- ARGV[5]    the lock's time to live, ms
--
-- Returns the id of the task that holds the lock: the one given (queued now), or a live one's
-- (nothing queued). A task is live while its payload is stored and it is not dead-lettered:
-- queued, delayed or in flight; so the lock is released, in effect, by the very step that
-- acks the task (which deletes its payload), and a task whose cluster died holds it until
-- the reaper has given it to another worker and it ended there.
local holder = redis.call('GET', KEYS[5])
if holder and holder ~= ARGV[1] and redis.call('HEXISTS', KEYS[2], holder) == 1
    and not redis.call('ZSCORE', KEYS[6], holder) then
  return holder
end
redis.call('SET', KEYS[5], ARGV[1], 'PX', ARGV[5])
enqueue({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, {ARGV[1], ARGV[2], ARGV[3], ARGV[4]})
return ARGV[1]
