#!lua flags=allow-oom
-- unlock.lua: release a lock only if we still own it.
--
-- KEYS[1] the lock   ARGV[1] the owner's value
-- Returns 1 if the lock was ours and is now released, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
