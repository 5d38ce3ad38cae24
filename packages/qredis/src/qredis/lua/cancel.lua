#!lua
-- cancel.lua: find a task that has not run yet, and swap its payload for its cancelled twin.
--
-- KEYS[1] queue     list of ready entries (bare ids, or "\0<id>\0<limit>\0<payload>" inline)
-- KEYS[2] msg       hash id -> payload
-- KEYS[3] delayed   zset id -> due time (ms)
-- KEYS[4] tokens    hash id -> current fencing token (present only while claimed)
-- KEYS[5] dead      zset id -> time of death
-- KEYS[6] maxatt    hash id -> per-task attempt limit
-- KEYS[7] cancel    zset id -> time a running task's termination was asked (ms)
-- ARGV[1] id
-- ARGV[2] "look" (return the stored payload) or "swap"
-- ARGV[3] (swap) SHA1 of the payload that was looked at   ARGV[4] (swap) the new payload
-- ARGV[5] "1": a claimed (running) task is to be terminated
--
-- Returns {state, payload-or-nothing}. state: "claimed" (held by a consumer; with ARGV[5]
-- its termination is now asked for: "terminating"), "dead", "unknown", "delayed" / "queued"
-- (look: with the payload; swap: done), "changed" (swap: the payload is not the one looked
-- at; look again). A swapped task is due at once (delayed set, score 0) at the highest
-- priority level (100), and the marker wakes an idle consumer: the next fetch hands it out
-- ahead of every waiting task, and the worker saves its Failure "cancelled" without running
-- it (no code runs, so the record, its hook, a chain's next step and a unique task's lock do
-- not wait behind a backlog). Its own level is dropped.
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[4], id) == 1 then
  if ARGV[5] == '1' then
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[7], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), id)
    return {'terminating'}
  end
  return {'claimed'}
end
if redis.call('ZSCORE', KEYS[5], id) then
  return {'dead'}
end

-- The queue's keys not given (all under the queue's hash tag, named from KEYS[1],
-- "<tag>:queue", as qredis.keys names them).
local tag = string.sub(KEYS[1], 1, #KEYS[1] - #':queue')

local function swap(state, current, take)
  if ARGV[2] == 'look' then
    return {state, current}
  end
  if redis.sha1hex(current) ~= ARGV[3] then
    return {'changed'}
  end
  take()
  redis.call('HSET', KEYS[2], id, ARGV[4])
  redis.call('ZADD', KEYS[3], 0, id)
  redis.call('HSET', tag .. ':prio', id, '100')
  redis.call('ZADD', tag .. ':marker', 0, '0')
  return {state}
end

-- Every list a ready task can wait in: each priority level's due and ready lists.
local lists = {tag .. ':due', KEYS[1]}
for _, level in ipairs(redis.call('ZRANGE', tag .. ':levels', 0, -1)) do
  lists[#lists + 1] = tag .. ':due:' .. level
  lists[#lists + 1] = KEYS[1] .. ':' .. level
end

local stored = redis.call('HGET', KEYS[2], id)
if stored then
  if redis.call('ZSCORE', KEYS[3], id) then
    return swap('delayed', stored, function() end)
  end
  for _, list in ipairs(lists) do
    if redis.call('LPOS', list, id) then
      return swap('queued', stored, function() redis.call('LREM', list, 1, id) end)
    end
  end
  return {'unknown'}
end

-- An inline entry of a bulk enqueue: its payload is in the queue entry itself.
local prefix = '\0' .. id .. '\0'
for _, list in ipairs(lists) do
  local size = redis.call('LLEN', list)
  for start = 0, size - 1, 1000 do
    local entries = redis.call('LRANGE', list, start, start + 999)
    for i = 1, #entries do
      local entry = entries[i]
      if string.sub(entry, 1, #prefix) == prefix then
        local b = string.find(entry, '\0', #prefix + 1, true)
        local limit = string.sub(entry, #prefix + 1, b - 1)
        return swap('queued', string.sub(entry, b + 1), function()
          redis.call('LREM', list, 1, entry)
          if limit ~= '' then
            redis.call('HSET', KEYS[6], id, limit)
          end
        end)
      end
    end
  end
end
return {'unknown'}
