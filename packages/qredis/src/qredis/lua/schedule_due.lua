#!lua
-- schedule_due.lua: which schedules are due, and when the next one is.
--
-- KEYS[1] the queue's due-time index (zset id -> due ms)
-- KEYS[2] (optional) the index of schedules pinned to the cluster's name
-- ARGV[1] now in ms, or "" for Redis's clock   ARGV[2] most entries to return
--
-- Returns {now, next, id1, due1, id2, due2, ...}: the schedules due at or before now (earliest
-- first, at most ARGV[2] per index) and the earliest due time after now (-1: none). Each index
-- is read with ZRANGE BYSCORE LIMIT: nothing is scanned, whatever the number of schedules.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local limit = tonumber(ARGV[2])
local out = {now, -1}
local nxt = nil
for i = 1, #KEYS do
  local due = redis.call('ZRANGE', KEYS[i], '-inf', now, 'BYSCORE', 'LIMIT', 0, limit, 'WITHSCORES')
  for j = 1, #due, 2 do
    out[#out + 1] = due[j]
    out[#out + 1] = due[j + 1]
  end
  local later = redis.call('ZRANGE', KEYS[i], '(' .. now, '+inf', 'BYSCORE', 'LIMIT', 0, 1,
    'WITHSCORES')
  if later[2] then
    local at = tonumber(later[2])
    if not nxt or at < nxt then
      nxt = at
    end
  end
end
if nxt then
  out[2] = nxt
end
return out
