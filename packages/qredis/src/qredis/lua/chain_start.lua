-- chain_start.lua: store a chain's links and queue its first (enqueue.lua's own body, the
-- local function enqueue(KEYS, ARGV), prepended when the script is loaded).
--
-- KEYS[1..7] enqueue.lua's KEYS for the first link's priority level
-- KEYS[8]    the chain's hash (see chain_ack.lua)
-- ARGV[1] "1": stop at the first failure   ARGV[2] n (links)
-- ARGV[3..6] the first link: id, payload, attempt limit (or ""), priority level
-- ARGV[7..]  the other links, in order, two ARGV each: "<id>\0<limit>\0<payload>" and the
--            link's priority level (kept as the field "prio:<index>" when it is not 0)
--
-- Returns 1, or 0 when the chain's hash exists already (nothing changes: a re-sent call).
if redis.call('EXISTS', KEYS[8]) == 1 then
  return 0
end
redis.call('HSET', KEYS[8], 'n', ARGV[2], 'stop', ARGV[1], 'done', 0, 'state', 'running')
for i = 7, #ARGV, 2 do
  local index = tostring((i - 7) / 2 + 2)
  redis.call('HSET', KEYS[8], index, ARGV[i])
  if ARGV[i + 1] ~= '0' then
    redis.call('HSET', KEYS[8], 'prio:' .. index, ARGV[i + 1])
  end
end
enqueue({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]},
  {ARGV[3], ARGV[4], 0, ARGV[5], ARGV[6]})
return 1
