#!lua flags=allow-oom
-- fetch.lua: claim up to N ready tasks for one consumer, atomically.
--
-- KEYS[1] queue      list of ready ids (the right end is the head)
-- KEYS[2] inflight   this consumer's in-flight list (newest on the left)
-- KEYS[3] msg        hash id -> payload
-- KEYS[4] attempts   hash id -> deliveries so far
-- KEYS[5] tokens     hash id -> current fencing token (present only while claimed)
-- KEYS[6] maxatt     hash id -> per-task attempt limit
-- KEYS[7] seq        fencing-token counter
-- KEYS[8] delayed    zset id -> due time (ms)
-- KEYS[9] consumers  zset consumer -> heartbeat deadline (ms)
-- ARGV[1] count: how many tasks to take from the queue at most
-- ARGV[2] the queue's default attempt limit
-- ARGV[3] consumer name
-- ARGV[4] deadline (ms from now) given to a consumer that fetches before its first heartbeat
-- ARGV[5] "1" after a BLMOVE: also claim ids already in the in-flight list without a token
--
-- Due delayed tasks are moved to the queue first. Each claimed id gets its attempt count
-- bumped and a fresh token from the counter. An id whose payload is missing is dropped.
-- Returns {next_due, ndropped, dropped ids..., then id, payload, attempt, limit, token per task}
-- where next_due is the ms until the next delayed task when nothing was claimed, else -1.
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

local claim = {}
if ARGV[5] == '1' then
  -- Ids moved in by BLMOVE (including any whose reply was lost to a dropped connection).
  local held = redis.call('LRANGE', KEYS[2], 0, -1)
  if #held > 0 then
    local toks = redis.call('HMGET', KEYS[5], unpack(held))
    for i = #held, 1, -1 do
      if not toks[i] then
        claim[#claim + 1] = held[i]
      end
    end
  end
end

local want = tonumber(ARGV[1]) - #claim
if want > 0 then
  local popped = redis.call('RPOP', KEYS[1], want)
  if popped then
    redis.call('LPUSH', KEYS[2], unpack(popped))
    for i = 1, #popped do
      claim[#claim + 1] = popped[i]
    end
  end
end

if #claim == 0 then
  local nxt = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
  if #nxt == 0 then
    return {-1, 0}
  end
  return {math.max(0, tonumber(nxt[2]) - now), 0}
end

local out = {-1, 0}
local dropped = {}
local token = redis.call('INCRBY', KEYS[7], #claim) - #claim
local default_limit = ARGV[2]
for i = 1, #claim do
  local id = claim[i]
  local payload = redis.call('HGET', KEYS[3], id)
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
    local limit = redis.call('HGET', KEYS[6], id) or default_limit
    out[#out + 1] = id
    out[#out + 1] = payload
    out[#out + 1] = attempt
    out[#out + 1] = limit
    out[#out + 1] = token
  end
end
if #dropped > 0 then
  local head = {-1, #dropped}
  for i = 1, #dropped do
    head[#head + 1] = dropped[i]
  end
  for i = 3, #out do
    head[#head + 1] = out[i]
  end
  return head
end
return out
