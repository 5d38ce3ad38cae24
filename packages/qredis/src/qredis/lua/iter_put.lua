#!lua
-- iter_put.lua: keep one finished call's signed record in its iteration's hash; once every
-- call's is there, hand them all back (the caller saves the collated record before its ack).
--
-- KEYS[1] the iteration's hash (index -> signed record)
-- ARGV[1] index   ARGV[2] signed record   ARGV[3] the iteration's size
--
-- Returns {} while calls are missing, else every record. One HSET per index: a call run
-- twice writes its own field again, and two workers finishing last calls at once may both
-- get the records (both save the same collated record: an upsert). Kept a day.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], 86400)
if redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then
  return {}
end
return redis.call('HVALS', KEYS[1])
