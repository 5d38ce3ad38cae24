#!lua
-- enqueue.lua: store payloads once and queue their ids (or schedule them), all or nothing.
--
-- KEYS[1] queue    list of ready ids (LPUSH here; consumers take from the right end)
-- KEYS[2] msg      hash id -> signed payload
-- KEYS[3] delayed  zset id -> due time (ms, Redis clock)
-- KEYS[4] maxatt   hash id -> per-task attempt limit
-- ARGV[1] delay in ms (0: ready now)
-- ARGV[2] attempt limit for these tasks, or "" for the queue's default
-- ARGV[3..] id1, payload1, id2, payload2, ...
--
-- Returns how many ids were queued. An id whose payload is already stored is skipped, so a
-- client that retries after a dropped connection changes nothing (HSETNX semantics).
-- No allow-oom flag: past maxmemory Redis refuses the whole script before it writes anything.
local n = (#ARGV - 2) / 2
local STEP = 1000
local ids = {}
for i = 1, n do
  ids[i] = ARGV[1 + 2 * i]
end

local fresh, fields, seen = {}, {}, {}
for s = 1, n, STEP do
  local e = math.min(s + STEP - 1, n)
  local got = redis.call('HMGET', KEYS[2], unpack(ids, s, e))
  for i = s, e do
    local id = ids[i]
    if not got[i - s + 1] and not seen[id] then
      seen[id] = true
      fresh[#fresh + 1] = id
      fields[#fields + 1] = id
      fields[#fields + 1] = ARGV[2 + 2 * i]
    end
  end
end
if #fresh == 0 then
  return 0
end

for s = 1, #fields, 2 * STEP do
  redis.call('HSET', KEYS[2], unpack(fields, s, math.min(s + 2 * STEP - 1, #fields)))
end

if ARGV[2] ~= '' then
  local limits = {}
  for i = 1, #fresh do
    limits[2 * i - 1] = fresh[i]
    limits[2 * i] = ARGV[2]
  end
  for s = 1, #limits, 2 * STEP do
    redis.call('HSET', KEYS[4], unpack(limits, s, math.min(s + 2 * STEP - 1, #limits)))
  end
end

local delay = tonumber(ARGV[1])
if delay > 0 then
  local t = redis.call('TIME')
  local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + delay
  local members = {}
  for i = 1, #fresh do
    members[2 * i - 1] = due
    members[2 * i] = fresh[i]
  end
  for s = 1, #members, 2 * STEP do
    redis.call('ZADD', KEYS[3], unpack(members, s, math.min(s + 2 * STEP - 1, #members)))
  end
else
  for s = 1, #fresh, STEP do
    redis.call('LPUSH', KEYS[1], unpack(fresh, s, math.min(s + STEP - 1, #fresh)))
  end
end
return #fresh
