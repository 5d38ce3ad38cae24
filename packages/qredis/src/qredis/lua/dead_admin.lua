#!lua flags=allow-oom
-- dead_admin.lua: requeue or purge dead letters.
--
-- KEYS[1] dead      zset id -> time of death (ms)
-- KEYS[2] deadinfo  hash id -> JSON {reason, attempts}
-- KEYS[3] msg       hash id -> payload
-- KEYS[4] attempts  hash id -> deliveries so far
-- KEYS[5] maxatt    hash id -> per-task attempt limit
-- KEYS[6] queue     level 0's ready list (level L's: "<queue>:L")
-- KEYS[7] prio      hash id -> level (levels other than 0): a requeued task keeps its level
-- KEYS[8] levels    zset of the levels other than 0 that may hold tasks
-- KEYS[9] marker    zset idle consumers block on
-- KEYS[10] done     zset id -> until when (ms) a delivery of that id is a replay: a requeue
--                   clears the id's mark (a worker loss's dead letter has one, see
--                   requeue.lua), except a replay's own, which stays refused while it lasts
-- ARGV[1] "requeue" (queue again with a fresh attempt count) or "purge" (delete for good)
-- ARGV[2] "all" to act on up to ARGV[3] dead letters, or "ids" to act on ARGV[3..]
--
-- Returns how many dead letters were acted on (ids that are not dead letters are ignored;
-- a dead letter whose payload is gone is purged rather than requeued).
-- (Loaded with lib/levels.lua in front of it, see qredis.scripts.)
local ids
if ARGV[2] == 'all' then
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
else
  ids = {}
  for i = 3, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
end
local n = 0
for i = 1, #ids do
  local id = ids[i]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    n = n + 1
    local info = redis.call('HGET', KEYS[2], id) or ''
    if ARGV[1] == 'requeue' and not string.find(info, '"reason":"replayed"', 1, true) then
      redis.call('ZREM', KEYS[10], id)
    end
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[4], id)
    if ARGV[1] == 'requeue' and redis.call('HEXISTS', KEYS[3], id) == 1 then
      local level = level_of(KEYS[7], id)
      redis.call('LPUSH', at_level(KEYS[6], level), id)
      announce(KEYS[8], KEYS[9], level)
    else
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[5], id)
      redis.call('HDEL', KEYS[7], id)
    end
  end
end
return n
