#!lua
-- enqueue_many.lua: queue one chunk of tasks, all or nothing, applied at most once.
--
-- KEYS[1] queue    list of ready entries (LPUSH here; consumers take from the right end)
-- KEYS[2] marker   this chunk's marker, {q:<name>}:chunk:<uuid>
-- KEYS[3] msg      hash id -> signed payload
-- KEYS[4] delayed  zset id -> due time (ms, Redis clock)
-- KEYS[5] maxatt   hash id -> per-task attempt limit
-- ARGV[1] delay in ms (0: ready now)
-- ARGV[2..] ready now: entries "\0<id>\0<attempt limit or empty>\0<payload>"
--           delayed:   id1, payload1, limit1, id2, payload2, limit2, ...
--
-- Ready tasks travel inside their queue entry (one LPUSH per 1000 tasks: the payload is moved
-- into the msg hash when a consumer claims the task), which is what makes bulk enqueue about
-- as fast as a pipelined LPUSH. The marker (SET NX, kept an hour) makes a chunk that a client
-- re-sends after a lost reply a no-op. Delayed tasks are stored as enqueue.lua does.
-- Returns how many tasks were queued, or -1 if this chunk was applied before.
-- No allow-oom flag: past maxmemory Redis refuses the whole script before it writes anything.
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', 3600000) then
  return -1
end
local n = #ARGV
local delay = tonumber(ARGV[1])
if delay <= 0 then
  for s = 2, n, 1000 do
    redis.call('LPUSH', KEYS[1], unpack(ARGV, s, math.min(s + 999, n)))
  end
  return n - 1
end
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + delay
local queued = 0
for i = 2, n, 3 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[3], id, ARGV[i + 1]) == 1 then
    if ARGV[i + 2] ~= '' then
      redis.call('HSET', KEYS[5], id, ARGV[i + 2])
    end
    redis.call('ZADD', KEYS[4], due, id)
    queued = queued + 1
  end
end
return queued
