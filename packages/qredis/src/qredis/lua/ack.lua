#!lua flags=allow-oom
-- ack.lua: forget finished tasks whose fencing token is still current, and remember them as
-- done for a while, so that a copy of one pushed back is refused (fetch.lua), not run.
--
-- KEYS[1] tokens    hash id -> current fencing token
-- KEYS[2] msg       hash id -> payload
-- KEYS[3] attempts  hash id -> deliveries so far
-- KEYS[4] maxatt    hash id -> per-task attempt limit
-- KEYS[5] acks      hash consumer -> "<request id> <answer>" of its last ack
-- KEYS[6] done      zset id -> until when (ms) a delivery of that id is a replay
-- KEYS[6+i]         the in-flight list of the consumer that holds task i
-- KEYS[7+n]         (optional) prio: hash id -> priority level, cleared for each task acked
--                   (chain_ack.lua runs this body without it: its links are all at level 0)
-- ARGV[1] the consumer the answer is recorded under (that of the first task)
-- ARGV[2] request id, fresh for each ack call (the same when redis-py re-sends the call)
-- ARGV[3] the replay window in ms: how long an acked id stays in done (0: not at all)
-- ARGV[3+2i-1], ARGV[3+2i]  id and token of task i
--
-- Returns 1 per task acked, 0 where the token is stale (the task was reaped, released or
-- redelivered since) or the task is not in that consumer's list; a 0 changes nothing.
-- A call whose request id is the one recorded for its consumer is a re-send after a lost
-- reply: it answers what the first call did (its tokens are gone now, so it would answer 0
-- and the caller would take its own acked tasks for redelivered ones).
-- done is trimmed as it goes: each call drops the marks whose time is up (each mark is
-- dropped once, so this costs O(log N) per call plus the marks dropped).
-- allow-oom: acks free memory, so they must work when Redis is full.
local last = redis.call('HGET', KEYS[5], ARGV[1])
local rid = ARGV[2]
if last and string.sub(last, 1, #rid + 1) == rid .. ' ' then
  local out = {}
  for i = #rid + 2, #last do
    out[#out + 1] = tonumber(string.sub(last, i, i))
  end
  return out
end
local out = {}
local n = (#ARGV - 3) / 2
local prio = KEYS[7 + n]
local window = tonumber(ARGV[3])
local marks = {}
for i = 1, n do
  local id = ARGV[2 * i + 2]
  local current = redis.call('HGET', KEYS[1], id)
  if current and current == ARGV[2 * i + 3] and redis.call('LREM', KEYS[6 + i], -1, id) > 0 then
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    if prio then
      redis.call('HDEL', prio, id)
    end
    marks[#marks + 1] = id
    out[i] = 1
  else
    out[i] = 0
  end
end
if window > 0 and #marks > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for s = 1, #marks, 1000 do
    local args = {}
    for i = s, math.min(s + 999, #marks) do
      args[#args + 1] = now + window
      args[#args + 1] = marks[i]
    end
    redis.call('ZADD', KEYS[6], unpack(args))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
end
redis.call('HSET', KEYS[5], ARGV[1], rid .. ' ' .. table.concat(out))
return out
