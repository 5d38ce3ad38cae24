#!lua flags=allow-oom
-- fetch.lua: claim up to N ready tasks for one consumer, atomically.
--
-- KEYS[1] queue      list of ready entries (the right end is the head)
-- KEYS[2] inflight   this consumer's in-flight list of ids (newest on the left)
-- KEYS[3] msg        hash id -> payload
-- KEYS[4] attempts   hash id -> deliveries so far
-- KEYS[5] tokens     hash id -> current fencing token (present only while claimed)
-- KEYS[6] maxatt     hash id -> per-task attempt limit
-- KEYS[7] seq        fencing-token counter
-- KEYS[8] delayed    zset id -> due time (ms)
-- KEYS[9] consumers  zset consumer -> heartbeat deadline (ms)
-- KEYS[10] fetches   hash consumer -> "<request id> <first token> <count>" of its last claim
-- ARGV[1] count: how many tasks to take at most
-- ARGV[2] the queue's default attempt limit
-- ARGV[3] consumer name
-- ARGV[4] deadline (ms from now) given to a consumer that fetches before its first heartbeat
-- ARGV[5] "1" after a BLMOVE: also claim entries already in the in-flight list without a token
-- ARGV[6] request id, fresh for each fetch call (the same when redis-py re-sends the call)
--
-- A call whose request id is the consumer's last one is a re-send after a lost reply: it
-- answers the same deliveries again instead of claiming more from the queue (which the
-- consumer would never learn about, and which would sit in its in-flight list for as long as
-- it lives). The consumer's held tasks whose token is at least the recorded first token are
-- exactly those claimed under that request id (later claims carry a later request id, earlier
-- ones smaller tokens). A re-sent call with ARGV[5] = "1" follows a re-sent BLMOVE (the two
-- travel in one pipeline), which may have moved one more entry in: that entry is claimed too
-- and answered with the rest, so a blocking fetch always claims what its BLMOVE brought.
-- A queue entry is either a bare id (its payload waits in msg) or, from enqueue_many, an
-- inline entry "\0<id>\0<attempt limit or empty>\0<payload>" whose payload moves into msg
-- now. An inline entry whose id already has a payload is a duplicate of a live task: dropped.
-- Due delayed tasks are moved to the queue first. Each claimed id gets its attempt count
-- bumped and a fresh token from the counter. A bare id whose payload is missing is dropped.
-- Returns {next_due, ndropped, nduplicates, dropped ids..., duplicate ids..., then
-- id, payload, attempt, limit, token per claimed task}; next_due is the ms until the next
-- delayed task when nothing was claimed, else -1.
-- allow-oom: fetching (and so draining) must keep working when Redis is full.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local due = redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  redis.call('ZREM', KEYS[8], unpack(due))
  redis.call('LPUSH', KEYS[1], unpack(due))
end

-- Registering makes an in-flight list findable by the reaper even if no heartbeat ever comes.
redis.call('ZADD', KEYS[9], 'NX', now + tonumber(ARGV[4]), ARGV[3])

-- The tasks this consumer holds with a token of at least `first`, oldest first, as
-- id, payload, attempt, limit, token.
local function held_since(first, out)
  local held = redis.call('LRANGE', KEYS[2], 0, -1)
  for i = #held, 1, -1 do
    local id = held[i]
    local token = tonumber(redis.call('HGET', KEYS[5], id) or '0')
    if token >= first then
      out[#out + 1] = id
      out[#out + 1] = redis.call('HGET', KEYS[3], id)
      out[#out + 1] = tonumber(redis.call('HGET', KEYS[4], id))
      out[#out + 1] = redis.call('HGET', KEYS[6], id) or ARGV[2]
      out[#out + 1] = token
    end
  end
  return out
end

local replay = nil
local last = redis.call('HGET', KEYS[10], ARGV[3])
if last then
  local rid, first = string.match(last, '^(%S+) (%d+) ')
  if rid == ARGV[6] then
    replay = tonumber(first)
    if ARGV[5] ~= '1' then
      return held_since(replay, {-1, 0, 0})
    end
  end
end

local claim, push, inline, dups = {}, {}, {}, {}

-- The id of a queue entry, or nil for a duplicate; an inline payload moves into msg.
local function open(entry)
  if string.byte(entry, 1) ~= 0 then
    return entry
  end
  local a = string.find(entry, '\0', 2, true)
  local b = string.find(entry, '\0', a + 1, true)
  local id = string.sub(entry, 2, a - 1)
  local payload = string.sub(entry, b + 1)
  if redis.call('HSETNX', KEYS[3], id, payload) == 0 then
    dups[#dups + 1] = id
    return nil
  end
  if b > a + 1 then
    redis.call('HSET', KEYS[6], id, string.sub(entry, a + 1, b - 1))
  end
  inline[id] = payload
  return id
end

if ARGV[5] == '1' then
  -- Entries moved in by BLMOVE (including any whose reply was lost to a dropped connection).
  local held = redis.call('LRANGE', KEYS[2], 0, -1)
  for i = #held, 1, -1 do
    local entry = held[i]
    if string.byte(entry, 1) == 0 then
      redis.call('LREM', KEYS[2], 1, entry)
      local id = open(entry)
      if id then
        claim[#claim + 1] = id
        push[#push + 1] = id
      end
    elseif not redis.call('HGET', KEYS[5], entry) then
      claim[#claim + 1] = entry
    end
  end
end

local want = tonumber(ARGV[1]) - #claim
if want > 0 and not replay then
  local popped = redis.call('RPOP', KEYS[1], want)
  if popped then
    for i = 1, #popped do
      local id = open(popped[i])
      if id then
        claim[#claim + 1] = id
        push[#push + 1] = id
      end
    end
  end
end
for s = 1, #push, 1000 do
  redis.call('LPUSH', KEYS[2], unpack(push, s, math.min(s + 999, #push)))
end

local out = {-1, 0, #dups}
if #claim == 0 then
  local nxt = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
  if #nxt > 0 then
    out[1] = math.max(0, tonumber(nxt[2]) - now)
  end
  for i = 1, #dups do
    out[#out + 1] = dups[i]
  end
  if replay then
    return held_since(replay, out)
  end
  return out
end

local dropped, body = {}, {}
local token = redis.call('INCRBY', KEYS[7], #claim) - #claim
if not replay then
  redis.call('HSET', KEYS[10], ARGV[3], ARGV[6] .. ' ' .. (token + 1) .. ' ' .. #claim)
end
local default_limit = ARGV[2]
for i = 1, #claim do
  local id = claim[i]
  local payload = inline[id] or redis.call('HGET', KEYS[3], id)
  if not payload then
    redis.call('LREM', KEYS[2], 1, id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
    redis.call('HDEL', KEYS[6], id)
    dropped[#dropped + 1] = id
  else
    token = token + 1
    local attempt = redis.call('HINCRBY', KEYS[4], id, 1)
    redis.call('HSET', KEYS[5], id, token)
    body[#body + 1] = id
    body[#body + 1] = payload
    body[#body + 1] = attempt
    body[#body + 1] = redis.call('HGET', KEYS[6], id) or default_limit
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
if replay then
  return held_since(replay, out)
end
for i = 1, #body do
  out[#out + 1] = body[i]
end
return out
