-- prune.lua: delete consumers of a queue's ready streams that hold nothing, so stopped
-- workers and reclaimers do not accumulate in the consumer groups forever.
-- A consumer with pending entries is never deleted: XGROUP DELCONSUMER would drop its
-- entries from the pending list, and no reclaimer could find those jobs again. The check
-- and the delete are one script, so a consumer cannot fetch in between.
--
-- KEYS[1..n] {q}:p<prio> the ready streams (missing ones are skipped)
-- ARGV[1] group, ARGV[2] min idle ms (a consumer idle less long is kept),
-- ARGV[3..] consumer names to consider (none given: every consumer of the group)
-- Touches only KEYS (XINFO CONSUMERS, XGROUP DELCONSUMER on their consumer group).
-- Returns the number of consumers deleted (summed over streams).
local group, min_idle = ARGV[1], tonumber(ARGV[2])
local only = nil
if #ARGV > 2 then
  only = {}
  for i = 3, #ARGV do only[ARGV[i]] = true end
end
local deleted = 0
for _, stream in ipairs(KEYS) do
  local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', stream, group)
  if ok then  -- no stream or no group: nothing to prune there
    for _, c in ipairs(consumers) do
      local info = {}
      for k = 1, #c, 2 do info[c[k]] = c[k + 1] end
      -- Redis 7.2+ has `inactive` (since the last successful read or claim; -1: never);
      -- older servers only `idle`.
      local idle = tonumber(info['idle']) or 0
      local inactive = tonumber(info['inactive'])
      if inactive and inactive >= 0 then idle = inactive end
      if tonumber(info['pending']) == 0 and idle >= min_idle
          and (only == nil or only[info['name']]) then
        redis.call('XGROUP', 'DELCONSUMER', stream, group, info['name'])
        deleted = deleted + 1
      end
    end
  end
end
return deleted
