-- levels.lua: what the scripts that move ready tasks share (put in front of their text by
-- qredis.scripts). A queue's keys all carry its hash tag; the lists of priority level L
-- other than 0 are the level-0 list's name with ":L" appended (see qredis.keys), so they
-- live in the same slot as the keys each script is given.

-- Redis's clock, in ms.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The list of level `level` (a string) whose level-0 name is `base`.
local function at_level(base, level)
  if level == '0' then
    return base
  end
  return base .. ':' .. level
end

-- The level of a task: its entry in the prio hash, or '0'.
local function level_of(prio, id)
  return redis.call('HGET', prio, id) or '0'
end

-- Note a ready task at `level`: a level other than 0 joins the levels zset, and the marker
-- gets its member so that a consumer blocked on it wakes.
local function announce(levels, marker, level)
  if level ~= '0' then
    redis.call('ZADD', levels, level, level)
  end
  redis.call('ZADD', marker, 0, '0')
end

-- Move up to `limit` delayed tasks whose time came (oldest due time first) onto the due lists
-- of their levels, in due-time order: they run before anything queued after their time.
-- Returns how many moved.
local function promote(delayed, due_base, prio, levels, marker, now, limit)
  local ids = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, limit)
  if #ids == 0 then
    return 0
  end
  redis.call('ZREM', delayed, unpack(ids))
  local of = redis.call('HMGET', prio, unpack(ids))
  local groups, order = {}, {}
  for i = 1, #ids do
    local level = of[i] or '0'
    local group = groups[level]
    if not group then
      group = {}
      groups[level] = group
      order[#order + 1] = level
    end
    group[#group + 1] = ids[i]
  end
  for _, level in ipairs(order) do
    redis.call('LPUSH', at_level(due_base, level), unpack(groups[level]))
    announce(levels, marker, level)
  end
  return #ids
end

-- The levels to serve, highest first: those in the levels zset and 0.
local function levels_in_order(levels)
  local order, zero = {}, false
  for _, level in ipairs(redis.call('ZRANGE', levels, 0, -1, 'REV')) do
    if not zero and tonumber(level) < 0 then
      order[#order + 1] = '0'
      zero = true
    end
    order[#order + 1] = level
  end
  if not zero then
    order[#order + 1] = '0'
  end
  return order
end
