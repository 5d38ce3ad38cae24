#!lua flags=allow-oom
-- chain_ack.lua: ack a batch (ack.lua's own body) and, for each acked link of a chain, queue
-- the chain's next link (enqueue.lua's own body): one atomic step, so a crash between two
-- links neither loses nor doubles the next one. Both bodies are prepended as the local
-- functions ack(KEYS, ARGV) and enqueue(KEYS, ARGV) when the script is loaded, and
-- lua/lib/levels.lua before them (the next link's ready list is its level's, at_level).
--
-- KEYS[1..6+n]      ack.lua's KEYS for the n tasks of the batch
-- KEYS[7+n..13+n]   enqueue.lua's KEYS for level 0 (a link of another level is queued on
--                   its level's ready list, named from KEYS[7+n] as qredis.keys names it)
-- KEYS[14+n..13+2n] per task: its chain's hash, or any key of the queue when it is no link
-- ARGV[1] n
-- ARGV[2..4+2n]    ack.lua's ARGV
-- ARGV[5+2n..4+3n] per task: "-" (no link), or "<index> <s|f>": the link's index in its chain
--                  and whether it succeeded
--
-- A chain's hash: "n" (links), "stop" ("1": stop at the first failure), "done" (links that
-- finished), "state" ("running", "done", "stopped"), and "<index>" -> "<id>\0<limit>\0<payload>"
-- for each link not queued yet, with "prio:<index>" -> its priority level when that is not 0
-- (a chain stored before priorities has none: its links are queued at 0, as they were).
-- A link is queued once: its field is deleted as it is queued,
-- so an ack re-sent after a lost reply (ack() answers as the first call did) queues nothing.
-- Returns ack.lua's answer.
local n = tonumber(ARGV[1])
local akeys, aargv = {}, {}
for i = 1, 6 + n do
  akeys[i] = KEYS[i]
end
for i = 1, 3 + 2 * n do
  aargv[i] = ARGV[1 + i]
end
local out = ack(akeys, aargv)
local ekeys = {}
for i = 1, 7 do
  ekeys[i] = KEYS[6 + n + i]
end
local queue0 = ekeys[1]
for i = 1, n do
  local link = ARGV[4 + 2 * n + i]
  if link ~= '-' and out[i] == 1 then
    local chain = KEYS[13 + n + i]
    local index, outcome = string.match(link, '^(%d+) ([sf])$')
    local nextfield = tostring(tonumber(index) + 1)
    if redis.call('HSETNX', chain, 'acked:' .. index, '1') == 1 then
      local done = redis.call('HINCRBY', chain, 'done', 1)
      local total = tonumber(redis.call('HGET', chain, 'n') or '0')
      if outcome == 'f' and redis.call('HGET', chain, 'stop') == '1' and done < total then
        redis.call('HSET', chain, 'state', 'stopped', 'stopped_at', index)
        for j = tonumber(index) + 1, total do
          redis.call('HDEL', chain, tostring(j), 'prio:' .. j)
        end
        redis.call('EXPIRE', chain, 86400)
      else
        local entry, level = unpack(redis.call('HMGET', chain, nextfield, 'prio:' .. nextfield))
        if entry then
          level = level or '0'
          local a = string.find(entry, '\0', 1, true)
          local b = string.find(entry, '\0', a + 1, true)
          ekeys[1] = at_level(queue0, level)
          enqueue(ekeys, {string.sub(entry, 1, a - 1), string.sub(entry, b + 1), 0,
            string.sub(entry, a + 1, b - 1), level})
          redis.call('HDEL', chain, nextfield, 'prio:' .. nextfield)
        elseif done >= total then
          redis.call('HSET', chain, 'state', 'done')
          redis.call('EXPIRE', chain, 86400)
        end
      end
    end
  end
end
return out
