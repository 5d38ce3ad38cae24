#!lua flags=allow-oom
-- scan.lua: move due delayed tasks onto their due lists and list consumers whose heartbeat
-- expired. Cheap when there is nothing to do: it writes nothing then.
-- (Loaded with lib/levels.lua in front of it, see qredis.scripts.)
--
-- KEYS[1] delayed    zset id -> due time (ms)
-- KEYS[2] due        level 0's due list (level L's: "<due>:L")
-- KEYS[3] consumers  zset consumer -> heartbeat deadline (ms)
-- KEYS[4] prio       hash id -> level (levels other than 0)
-- KEYS[5] levels     zset of the levels other than 0 that may hold tasks
-- KEYS[6] marker     zset idle consumers block on
-- ARGV[1] most delayed tasks to move in this call
-- ARGV[2] most expired consumers to list (0: do not look)
--
-- Returns {moved, ms until the next delayed task or -1, expired consumer names...}.
local now = now_ms()
local moved = promote(KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], now, tonumber(ARGV[1]))
local out = {moved, -1}
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
