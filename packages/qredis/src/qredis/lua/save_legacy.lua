#!lua
-- save_legacy.lua: upsert task records with a TTL, index their names, announce them, in the
-- layout of Q 0.1: what a store whose codec is pinned to wire version 1 writes, so producers
-- of that version read them during a rolling upgrade (the current layout: save_results.lua).
--
-- KEYS[2i-1] the record key of task i     KEYS[2i] the name-index key of task i
-- ARGV[1] ttl in ms
-- ARGV[2] the channel to PUBLISH the saved ids on (space-separated, one PUBLISH per call)
-- ARGV[3..] per task: id, "1" (success) or "0" (failure), started (epoch seconds), record
--
-- A record is stored as "1" or "0" followed by the signed record, so the success flag can be
-- read without decoding. A failure never replaces a success (a redelivered task that failed
-- the second time must not erase the first, successful run). The name index holds
-- "<started> <id>" and moves only to a task enqueued at the same time or later.
-- Returns how many records were written.
local ttl = tonumber(ARGV[1])
local written = 0
local ids = {}
for i = 1, #KEYS / 2 do
  local base = 2 + 4 * (i - 1)
  local id, ok, started, record = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4]
  local rkey, nkey = KEYS[2 * i - 1], KEYS[2 * i]
  local keep = ok == '0' and redis.call('GETRANGE', rkey, 0, 0) == '1'
  if not keep then
    redis.call('SET', rkey, ok .. record, 'PX', ttl)
    written = written + 1
  else
    redis.call('PEXPIRE', rkey, ttl)
  end
  local current = redis.call('GET', nkey)
  local move = true
  if current then
    local when, who = string.match(current, '^(%S+) (%S+)$')
    if who ~= id and when and tonumber(when) > tonumber(started) then
      move = false
    end
  end
  if move then
    redis.call('SET', nkey, started .. ' ' .. id, 'PX', ttl)
  end
  ids[#ids + 1] = id
end
if #ids > 0 then
  redis.call('PUBLISH', ARGV[2], table.concat(ids, ' '))
end
return written
