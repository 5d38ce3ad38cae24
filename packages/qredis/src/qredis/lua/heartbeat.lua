#!lua flags=allow-oom
-- heartbeat.lua: declare consumers alive for TTL more milliseconds (Redis clock), one ZADD.
--
-- KEYS[1] consumers  zset consumer -> heartbeat deadline (ms)
-- ARGV[1] ttl in ms
-- ARGV[2..] consumer names
local t = redis.call('TIME')
local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local members = {}
for i = 2, #ARGV do
  members[#members + 1] = deadline
  members[#members + 1] = ARGV[i]
end
return redis.call('ZADD', KEYS[1], unpack(members))
