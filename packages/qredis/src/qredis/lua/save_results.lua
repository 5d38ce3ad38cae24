#!lua
-- save_results.lua: upsert task records with a TTL, index explicit names, announce them.
--
-- KEYS[2i-1] the records key of task i: {r:<ns>}:r:<the name derived from its id>
-- KEYS[2i]   the name-index key of task i ({r:<ns>}:name:<name>), or its records key again
--            when its name is the one derived from its id (then no index is written)
-- ARGV[1] ttl in ms
-- ARGV[2] the channel to PUBLISH the saved ids on (space-separated, one PUBLISH per call)
-- ARGV[3..] per task: id (hex), id (16 bytes), "1" (success) or "0" (failure),
--           started (epoch seconds; read only for a name index, else "0"), the signed record,
--           its fence (the fencing token of the delivery that ran it; "0": none)
--
-- A records key holds the records of the tasks whose ids give it its name (one, nearly
-- always: names are 32 bits), each as an entry: "1" or "0" (success), the id (16 bytes), the
-- record's length (2 bytes, big-endian), the signed record; or, for a record with a fence,
-- "S" or "F" (success), the id, the fence (8 bytes, big-endian), the length, the record.
-- A record never replaces one of the same id saved with a higher fence: the late save of a
-- superseded delivery (a worker frozen past its heartbeat while another ran the task again)
-- cannot overwrite the newer delivery's record, which is the one its hook saw. Then a failure
-- never replaces a success of the same id (a redelivered task that failed the second time
-- must not erase the first, successful run). The key keeps the newest MAX entries, and lives
-- ttl after its last save. A name index holds "<started> <id>" and moves only to a task
-- enqueued at the same time or later. Returns how many records were written.
local MAX = 16
local ttl = tonumber(ARGV[1])
local written = 0
local ids = {}
local SUCCESS = {['1'] = true, ['S'] = true}
for i = 1, #KEYS / 2 do
  local base = 2 + 6 * (i - 1)
  local id, raw, ok = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local started, record = ARGV[base + 4], ARGV[base + 5]
  local fence = tonumber(ARGV[base + 6])
  local rkey, nkey = KEYS[2 * i - 1], KEYS[2 * i]
  local current = redis.call('GET', rkey) or ''
  local kept, keep, pos, prior = {}, false, 1, 0
  while pos + 18 <= #current do
    local flag = string.sub(current, pos, pos)
    local head, stored_fence = 19, 0
    if flag == 'S' or flag == 'F' then
      head = 27
      stored_fence = struct.unpack('>I8', current, pos + 17)
    end
    local size = struct.unpack('>I2', current, pos + head - 2)
    local entry = string.sub(current, pos, pos + head - 1 + size)
    if string.sub(entry, 2, 17) == raw then
      prior = stored_fence
      keep = (fence > 0 and stored_fence > fence) or (ok == '0' and SUCCESS[flag] == true)
      if keep then
        kept[#kept + 1] = entry
      end
    else
      kept[#kept + 1] = entry
    end
    pos = pos + head + size
  end
  if not keep then
    fence = math.max(fence, prior)  -- an unfenced save keeps the fence it replaces
    if fence > 0 then
      local tag = ok == '1' and 'S' or 'F'
      kept[#kept + 1] = tag .. raw .. struct.pack('>I8', fence) .. struct.pack('>I2', #record)
        .. record
    else
      kept[#kept + 1] = ok .. raw .. struct.pack('>I2', #record) .. record
    end
    written = written + 1
  end
  while #kept > MAX do
    table.remove(kept, 1)
  end
  redis.call('SET', rkey, table.concat(kept), 'PX', ttl)
  if nkey ~= rkey then
    local index = redis.call('GET', nkey)
    local move = true
    if index then
      local when, who = string.match(index, '^(%S+) (%S+)$')
      if who ~= id and when and tonumber(when) > tonumber(started) then
        move = false
      end
    end
    if move then
      redis.call('SET', nkey, started .. ' ' .. id, 'PX', ttl)
    end
  end
  ids[#ids + 1] = id
end
if #ids > 0 then
  redis.call('PUBLISH', ARGV[2], table.concat(ids, ' '))
end
return written
