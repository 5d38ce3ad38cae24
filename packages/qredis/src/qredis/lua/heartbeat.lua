#!lua flags=allow-oom
-- heartbeat.lua: declare consumers alive for TTL more milliseconds (Redis clock), one ZADD.
--
-- KEYS[1] consumers  zset consumer -> heartbeat deadline (ms)
-- ARGV[1] ttl in ms, or "@<deadline>": the deadline itself, epoch ms (a sharded queue gives
--         every shard the same one, so a consumer expires on all of them at once)
-- ARGV[2..] consumer names
local deadline
if string.sub(ARGV[1], 1, 1) == '@' then
  deadline = tonumber(string.sub(ARGV[1], 2))
else
  local t = redis.call('TIME')
  deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
end
local members = {}
for i = 2, #ARGV do
  members[#members + 1] = deadline
  members[#members + 1] = ARGV[i]
end
return redis.call('ZADD', KEYS[1], unpack(members))
