-- chain_start.lua: store a chain's links and queue its first (enqueue.lua's own body, the
-- local function enqueue(KEYS, ARGV), prepended when the script is loaded).
--
-- KEYS[1..4] enqueue.lua's KEYS (queue, msg, delayed, maxatt)
-- KEYS[5]    the chain's hash (see chain_ack.lua)
-- ARGV[1] "1": stop at the first failure   ARGV[2] n (links)
-- ARGV[3..5] the first link: id, payload, attempt limit (or "")
-- ARGV[6..]  the other links, one "<id>\0<limit>\0<payload>" each, in order
--
-- Returns 1, or 0 when the chain's hash exists already (nothing changes: a re-sent call).
if redis.call('EXISTS', KEYS[5]) == 1 then
  return 0
end
redis.call('HSET', KEYS[5], 'n', ARGV[2], 'stop', ARGV[1], 'done', 0, 'state', 'running')
for i = 6, #ARGV do
  redis.call('HSET', KEYS[5], tostring(i - 4), ARGV[i])
end
enqueue({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, {ARGV[3], ARGV[4], 0, ARGV[5]})
return 1
