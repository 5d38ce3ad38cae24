#!lua
-- drop_result.lua: delete one task's record from its records key (see save_results.lua).
--
-- KEYS[1] the records key ({r:<ns>}:r:<the name derived from the id>)
-- ARGV[1] the id (16 bytes)
--
-- Returns 1 if a record was deleted, else 0.
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local kept, found, pos = {}, 0, 1
while pos + 18 <= #current do
  local flag = string.sub(current, pos, pos)
  local head = (flag == 'S' or flag == 'F') and 27 or 19  -- with a fence, 8 bytes more
  local size = struct.unpack('>I2', current, pos + head - 2)
  local entry = string.sub(current, pos, pos + head - 1 + size)
  if string.sub(entry, 2, 17) == ARGV[1] then
    found = 1
  else
    kept[#kept + 1] = entry
  end
  pos = pos + head + size
end
if found == 1 then
  if #kept == 0 then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], table.concat(kept), 'KEEPTTL')
  end
end
return found
