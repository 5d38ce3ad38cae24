-- enqueue_absent.lua: queue each task of a chunk whose id Q does not know yet: not stored
-- (queued, delayed, in flight or dead-lettered) and not completed within the replay window.
-- What an idempotent enqueue_many sends, so the same batch sent again runs no task twice.
-- enqueue.lua's body is prepended as the local function enqueue(KEYS, ARGV) when the script
-- is loaded (see qredis.scripts), so each task is queued as any other is.
--
-- KEYS[1..7] enqueue.lua's KEYS for the chunk's priority level
-- KEYS[8]    done  zset id -> until when (ms) the id is a completed task's (ack.lua)
-- ARGV[1] delay in ms (0: ready now)   ARGV[2] attempt limit, or "" for the queue's default
-- ARGV[3] priority level ("0": the default)
-- ARGV[4..] id1, payload1, id2, payload2, ...
--
-- Returns one flag per task: 1 queued now, 0 skipped (known already).
-- No allow-oom flag: past maxmemory Redis refuses the whole script before it writes anything.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local mark = redis.call('ZSCORE', KEYS[8], id)
  if mark and tonumber(mark) > now then
    out[#out + 1] = 0
  else
    out[#out + 1] = enqueue(KEYS, {id, ARGV[i + 1], ARGV[1], ARGV[2], ARGV[3]})
  end
end
return out
