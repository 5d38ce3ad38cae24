#!lua flags=allow-oom
-- remove_waiting.lua: delete tasks that wait (queued or delayed) before a worker takes them.
-- It only deletes, so it may run when Redis is out of memory (allow-oom).
--
-- KEYS[1] queue     list of ready entries (the right end is the head): a bare id, or an
--                   inline entry "\0<id>\0<limit>\0<payload>" from a bulk enqueue
-- KEYS[2] delayed   zset id -> due time (ms)
-- KEYS[3] msg       hash id -> payload
-- KEYS[4] attempts  hash id -> deliveries so far
-- KEYS[5] maxatt    hash id -> per-task attempt limit
-- ARGV[1] how many entries at the head of the queue are searched for inline entries
-- ARGV[2..] task ids
--
-- Returns the ids removed. An id a worker already took (in flight), or that is not waiting,
-- is left alone and not returned.
local window = tonumber(ARGV[1])
local head = nil
local removed = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local gone = redis.call('ZREM', KEYS[2], id) == 1
  if not gone then
    gone = redis.call('LREM', KEYS[1], -1, id) > 0
  end
  if not gone then
    if head == nil then
      head = redis.call('LRANGE', KEYS[1], -window, -1)
    end
    local prefix = '\0' .. id .. '\0'
    for j = 1, #head do
      local entry = head[j]
      if entry and string.sub(entry, 1, #prefix) == prefix then
        redis.call('LREM', KEYS[1], -1, entry)
        head[j] = false
        gone = true
        break
      end
    end
  end
  if gone then
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
    removed[#removed + 1] = id
  end
end
return removed
