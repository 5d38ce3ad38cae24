#!lua flags=allow-oom
-- mark_done.lua: mark ids done for the replay window in one shard's done zset, as ack.lua
-- marks the tasks it acks: a sharded queue marks, on its home shard (the shard its id hashes
-- to, where a copy of it sent through enqueue lands), a task that lives on another shard (a
-- chain's link, a unique task, a schedule's firing), so that the copy is refused there too.
--
-- KEYS[1] done  zset id -> until when (ms) a delivery of that id is a replay
-- ARGV[1] the replay window in ms
-- ARGV[2..] the ids
--
-- A mark already later than now + window is kept (ZADD GT). Returns how many ids were given.
-- allow-oom: it runs beside acks, which must work when Redis is full.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'GT', until_ms, ARGV[i])
end
return #ARGV - 1
