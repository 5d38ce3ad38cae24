#!lua flags=allow-oom
-- fetch.lua: claim up to N ready tasks for one consumer, atomically, highest priority first.
-- (Loaded with lib/levels.lua in front of it, see qredis.scripts.)
--
-- KEYS[1] queue      level 0's ready list (the right end is the head); level L's is
--                    "<queue>:L"
-- KEYS[2] due        level 0's due list (due delayed tasks, tasks given back); "<due>:L"
-- KEYS[3] inflight   this consumer's in-flight list of ids (newest on the left)
-- KEYS[4] msg        hash id -> payload
-- KEYS[5] attempts   hash id -> deliveries so far
-- KEYS[6] tokens     hash id -> current fencing token (present only while claimed)
-- KEYS[7] maxatt     hash id -> per-task attempt limit
-- KEYS[8] seq        fencing-token counter
-- KEYS[9] delayed    zset id -> due time (ms)
-- KEYS[10] consumers zset consumer -> heartbeat deadline (ms)
-- KEYS[11] fetches   hash consumer -> "<request id> <first token> <count>" of its last claim
-- KEYS[12] levels    zset of the levels other than 0 that may hold tasks
-- KEYS[13] prio      hash id -> level (levels other than 0)
-- KEYS[14] marker    zset idle consumers block on (BZPOPMIN)
-- KEYS[15] done      zset id -> until when (ms) a delivery of that id is a replay (ack.lua)
-- KEYS[16] dead      zset id -> time of death (ms)
-- KEYS[17] deadinfo  hash id -> JSON {reason, attempts}
-- ARGV[1] count: how many tasks to take at most
-- ARGV[2] the queue's default attempt limit
-- ARGV[3] consumer name
-- ARGV[4] deadline (ms from now) given to a consumer that fetches before its first heartbeat
-- ARGV[5] request id, fresh for each fetch call (the same when redis-py re-sends the call)
--
-- Order: levels from the highest down; within a level its due list, then its ready list,
-- each FIFO. Due delayed tasks are moved onto their level's due list first, so a delayed task
-- whose time came runs before every task of its level that is waiting in the ready list.
-- A call whose request id is the consumer's last one is a re-send after a lost reply: it
-- answers the same deliveries again instead of claiming more (which the consumer would never
-- learn about, and which would sit in its in-flight list for as long as it lives). The
-- consumer's held tasks whose token is at least the recorded first token are exactly those
-- claimed under that request id (later claims carry a later request id, earlier ones smaller
-- tokens).
-- A list entry is either a bare id (its payload waits in msg) or, from enqueue_many, an
-- inline entry "\0<id>\0<attempt limit or empty>\0<payload>" whose payload moves into msg
-- now. An inline entry whose id already has a payload is a duplicate of a live task: dropped.
-- Each claimed id gets its attempt count bumped and a fresh token from the counter. A bare id
-- whose payload is missing is dropped. The marker is left set only when ready tasks are left
-- (another idle consumer wakes for them), and removed when none are.
-- An id marked done (acked within the replay window) is a copy of a completed task pushed
-- back: it is not delivered but dead-lettered with the reason "replayed" (its payload kept),
-- unless it is a dead letter already (then left as it is).
-- Returns {next_due, ndropped, nduplicates, nreplayed, dropped ids..., duplicate ids...,
-- replayed ids..., then id, payload, attempt, limit, token per claimed task}; next_due is the
-- ms until the next delayed task when nothing was claimed, else -1.
-- allow-oom: fetching (and so draining) must keep working when Redis is full.
local now = now_ms()
promote(KEYS[9], KEYS[2], KEYS[13], KEYS[12], KEYS[14], now, 1000)

-- Registering makes an in-flight list findable by the reaper even if no heartbeat ever comes.
redis.call('ZADD', KEYS[10], 'NX', now + tonumber(ARGV[4]), ARGV[3])

-- The tasks this consumer holds with a token of at least `first`, oldest first, as
-- id, payload, attempt, limit, token.
local function held_since(first, out)
  local held = redis.call('LRANGE', KEYS[3], 0, -1)
  for i = #held, 1, -1 do
    local id = held[i]
    local token = tonumber(redis.call('HGET', KEYS[6], id) or '0')
    if token >= first then
      out[#out + 1] = id
      out[#out + 1] = redis.call('HGET', KEYS[4], id)
      out[#out + 1] = tonumber(redis.call('HGET', KEYS[5], id))
      out[#out + 1] = redis.call('HGET', KEYS[7], id) or ARGV[2]
      out[#out + 1] = token
    end
  end
  return out
end

local last = redis.call('HGET', KEYS[11], ARGV[3])
if last then
  local rid, first = string.match(last, '^(%S+) (%d+) ')
  if rid == ARGV[5] then
    return held_since(tonumber(first), {-1, 0, 0, 0})
  end
end

local claim, inline, dups = {}, {}, {}

-- The id of a list entry of `level`, or nil for a duplicate; an inline payload moves into msg.
local function open(entry, level)
  if string.byte(entry, 1) ~= 0 then
    return entry
  end
  local a = string.find(entry, '\0', 2, true)
  local b = string.find(entry, '\0', a + 1, true)
  local id = string.sub(entry, 2, a - 1)
  local payload = string.sub(entry, b + 1)
  if redis.call('HSETNX', KEYS[4], id, payload) == 0 then
    dups[#dups + 1] = id
    return nil
  end
  if b > a + 1 then
    redis.call('HSET', KEYS[7], id, string.sub(entry, a + 1, b - 1))
  end
  if level ~= '0' then
    redis.call('HSET', KEYS[13], id, level)
  end
  inline[id] = payload
  return id
end

local want = tonumber(ARGV[1])
local order = levels_in_order(KEYS[12])
for n, level in ipairs(order) do
  local lists = {at_level(KEYS[2], level), at_level(KEYS[1], level)}
  for _, list in ipairs(lists) do
    if want > 0 then
      local popped = redis.call('RPOP', list, want)
      if popped then
        for i = 1, #popped do
          local id = open(popped[i], level)
          if id then
            claim[#claim + 1] = id
          end
        end
        want = want - #popped
      end
    end
  end
  if want > 0 then
    -- both lists of this level are empty now
    if level ~= '0' then
      redis.call('ZREM', KEYS[12], level)
    end
  else
    -- The marker says "ready work": kept for another idle consumer if some is left.
    if n < #order or redis.call('LLEN', lists[1]) + redis.call('LLEN', lists[2]) > 0 then
      redis.call('ZADD', KEYS[14], 0, '0')
    else
      redis.call('DEL', KEYS[14])
    end
    break
  end
end
if want > 0 then
  redis.call('DEL', KEYS[14])  -- nothing is ready: no consumer should wake for nothing
end

-- Replays: ids acked within the window (one ZMSCORE per 1,000 claimed).
local replayed = {}
if #claim > 0 then
  local kept = {}
  for s = 1, #claim, 1000 do
    local last = math.min(s + 999, #claim)
    local until_ms = redis.call('ZMSCORE', KEYS[15], unpack(claim, s, last))
    for j = s, last do
      local mark = until_ms[j - s + 1]
      if mark and tonumber(mark) > now then
        replayed[#replayed + 1] = claim[j]
      else
        kept[#kept + 1] = claim[j]
      end
    end
  end
  claim = kept
  -- A copy of a task that is a dead letter already (a worker loss's, marked done) leaves
  -- that dead letter as it is: its reason is what its owed record is made of.
  local info = cjson.encode({reason = 'replayed', attempts = 0})
  for i = 1, #replayed do
    redis.call('ZADD', KEYS[16], 'NX', now, replayed[i])
    redis.call('HSETNX', KEYS[17], replayed[i], info)
  end
end

for s = 1, #claim, 1000 do
  redis.call('LPUSH', KEYS[3], unpack(claim, s, math.min(s + 999, #claim)))
end

local out = {-1, 0, #dups, #replayed}
if #claim == 0 then
  local nxt = redis.call('ZRANGE', KEYS[9], 0, 0, 'WITHSCORES')
  if #nxt > 0 then
    out[1] = math.max(0, tonumber(nxt[2]) - now)
  end
  for i = 1, #dups do
    out[#out + 1] = dups[i]
  end
  for i = 1, #replayed do
    out[#out + 1] = replayed[i]
  end
  return out
end

local dropped = {}
local token = redis.call('INCRBY', KEYS[8], #claim) - #claim
redis.call('HSET', KEYS[11], ARGV[3], ARGV[5] .. ' ' .. (token + 1) .. ' ' .. #claim)
local default_limit = ARGV[2]
local body = {}
for i = 1, #claim do
  local id = claim[i]
  local payload = inline[id] or redis.call('HGET', KEYS[4], id)
  if not payload then
    redis.call('LREM', KEYS[3], 1, id)
    redis.call('HDEL', KEYS[5], id)
    redis.call('HDEL', KEYS[6], id)
    redis.call('HDEL', KEYS[7], id)
    redis.call('HDEL', KEYS[13], id)
    dropped[#dropped + 1] = id
  else
    token = token + 1
    local attempt = redis.call('HINCRBY', KEYS[5], id, 1)
    redis.call('HSET', KEYS[6], id, token)
    body[#body + 1] = id
    body[#body + 1] = payload
    body[#body + 1] = attempt
    body[#body + 1] = redis.call('HGET', KEYS[7], id) or default_limit
    body[#body + 1] = token
  end
end
out[2] = #dropped
for i = 1, #dropped do
  out[#out + 1] = dropped[i]
end
for i = 1, #dups do
  out[#out + 1] = dups[i]
end
for i = 1, #replayed do
  out[#out + 1] = replayed[i]
end
for i = 1, #body do
  out[#out + 1] = body[i]
end
return out
