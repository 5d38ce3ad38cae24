#!lua flags=allow-oom
-- requeue.lua: return all of one consumer's in-flight tasks to the head of the queue: the head
-- of their priority level's due list, which is served before the level's ready list.
-- (Loaded with lib/levels.lua in front of it, see qredis.scripts.)
-- Used by release (a consumer stopped or died under our eyes) and by the reaper (a
-- consumer's heartbeat expired).
--
-- KEYS[1] inflight   the consumer's in-flight list (newest on the left; ids, or inline
--                    entries a BLMOVE brought in and no claim has opened yet)
-- KEYS[2] consumers  zset consumer -> heartbeat deadline (ms)
-- KEYS[3] queue      list of ready ids (the right end is the head)
-- KEYS[4] msg        hash id -> payload
-- KEYS[5] attempts   hash id -> deliveries so far
-- KEYS[6] tokens     hash id -> current fencing token
-- KEYS[7] maxatt     hash id -> per-task attempt limit
-- KEYS[8] dead       zset id -> time of death (ms)
-- KEYS[9] deadinfo   hash id -> JSON {reason, attempts}
-- KEYS[10] reaper    the reaper's lock
-- KEYS[11] fetches   hash consumer -> its last claim (see fetch.lua)
-- KEYS[12] acks      hash consumer -> its last ack's answer (see ack.lua)
-- KEYS[13] unrecorded zset id -> time: dead letters whose Failure record is owed (a cluster
--                    saves it, then removes the id: see Recovery.unrecorded)
-- KEYS[14] due       level 0's due list (level L's: "<due>:L")
-- KEYS[15] prio      hash id -> level (levels other than 0)
-- KEYS[16] levels    zset of the levels other than 0 that may hold tasks
-- KEYS[17] marker    zset idle consumers block on
-- KEYS[18] done      zset id -> until when (ms) a delivery of that id is a replay (ack.lua)
-- ARGV[1] consumer name
-- ARGV[2] "reap", "reclaim" or "release"
-- ARGV[3] reap, reclaim: the lock owner's value (the pass is refused if the lock is not ours)
-- ARGV[4] the queue's default attempt limit
-- ARGV[5] the dead-letter reason, for tasks out of attempts
-- ARGV[6] the replay window in ms (0: nothing is marked done)
-- ARGV[7..] release: ids of tasks that had started running
--
-- Reap: every task keeps its attempt count; the consumer is deregistered. Refused (returns
-- {-1, 0, 0}) if the lock is not ours; skipped ({0, 0, 0}) if the consumer heartbeated since.
-- Reclaim: as reap, whatever the heartbeat (the consumer's cluster is known to be gone).
-- Release: tasks not in ARGV[6..] never ran, so their delivery is uncounted.
-- A task that ran and reached its attempt limit is dead-lettered instead of requeued, and
-- its Failure record is owed (KEYS[13]) until a cluster saves it; the task has ended (that
-- Failure is its last word), so it is marked done as an ack marks a task: a copy pushed back
-- is refused by the fetch as a replay (a requeue of the dead letter clears the mark).
-- Returns {requeued, dead_lettered, dropped (payload missing)}.
local now = now_ms()
local reap = ARGV[2] == 'reap' or ARGV[2] == 'reclaim'
if reap then
  if redis.call('GET', KEYS[10]) ~= ARGV[3] then
    return {-1, 0, 0}
  end
end
if ARGV[2] == 'reap' then
  local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if deadline and tonumber(deadline) > now then
    return {0, 0, 0}
  end
end

local started = {}
for i = 7, #ARGV do
  started[ARGV[i]] = true
end

local window = tonumber(ARGV[6])
local requeued, dead, dropped = 0, 0, 0
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
-- Newest first: pushing each on the head leaves the oldest at the very head, so the tasks
-- run again in the order they were first taken.
for i = 1, #ids do
  local id = ids[i]
  if string.byte(id, 1) == 0 then
    -- an inline entry a BLMOVE of Q before priorities brought in and nobody claimed: back
    -- as it came
    redis.call('RPUSH', KEYS[3], id)
    announce(KEYS[16], KEYS[17], '0')
    requeued = requeued + 1
  elseif redis.call('HEXISTS', KEYS[4], id) == 0 then
    redis.call('HDEL', KEYS[5], id)
    redis.call('HDEL', KEYS[6], id)
    redis.call('HDEL', KEYS[7], id)
    redis.call('HDEL', KEYS[15], id)
    dropped = dropped + 1
  else
    local claimed = redis.call('HDEL', KEYS[6], id) == 1
    local attempt = tonumber(redis.call('HGET', KEYS[5], id) or '0')
    local ran = reap or started[id]
    if claimed and not ran and attempt > 0 then
      attempt = attempt - 1
      if attempt > 0 then
        redis.call('HSET', KEYS[5], id, attempt)
      else
        redis.call('HDEL', KEYS[5], id)
      end
    end
    local limit = tonumber(redis.call('HGET', KEYS[7], id) or ARGV[4])
    if ran and attempt >= limit then
      redis.call('HDEL', KEYS[5], id)
      redis.call('ZADD', KEYS[8], now, id)
      local reason = ARGV[5] .. ' (attempt ' .. attempt .. ' of ' .. limit .. ')'
      redis.call('HSET', KEYS[9], id, cjson.encode({reason = reason, attempts = attempt}))
      redis.call('ZADD', KEYS[13], now, id)
      if window > 0 then
        redis.call('ZADD', KEYS[18], now + window, id)
      end
      dead = dead + 1
    else
      local level = level_of(KEYS[15], id)
      redis.call('RPUSH', at_level(KEYS[14], level), id)
      announce(KEYS[16], KEYS[17], level)
      requeued = requeued + 1
    end
  end
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[11], ARGV[1])
redis.call('HDEL', KEYS[12], ARGV[1])
if reap then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return {requeued, dead, dropped}
