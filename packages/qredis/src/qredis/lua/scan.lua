#!lua flags=allow-oom
-- scan.lua: move due delayed tasks to the queue and list consumers whose heartbeat expired.
-- Cheap when there is nothing to do: it writes nothing then.
--
-- KEYS[1] delayed    zset id -> due time (ms)
-- KEYS[2] queue      list of ready ids
-- KEYS[3] consumers  zset consumer -> heartbeat deadline (ms)
-- ARGV[1] most delayed tasks to move in this call
-- ARGV[2] most expired consumers to list (0: do not look)
--
-- Returns {moved, ms until the next delayed task or -1, expired consumer names...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
  redis.call('LPUSH', KEYS[2], unpack(due))
end
local out = {#due, -1}
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt > 0 then
  out[2] = math.max(0, tonumber(nxt[2]) - now)
end
if tonumber(ARGV[2]) > 0 then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
  for i = 1, #expired do
    out[#out + 1] = expired[i]
  end
end
return out
