#!lua
-- status.lua: publish one cluster's status with a TTL and register it by expiry.
--
-- KEYS[1] the registry (zset cluster id -> expiry, ms, Redis clock)
-- KEYS[2] the cluster's status key
-- ARGV[1] cluster id   ARGV[2] status (JSON)   ARGV[3] ttl in ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[2], ARGV[2], 'PX', tonumber(ARGV[3]))
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return now
