-- release.lua: hand held jobs back for immediate redelivery (graceful shutdown, or a
-- restarted worker recovering its own pending entries).
--
-- KEYS[1] {q}:p<prio> the ready stream the entries came from
-- ARGV[1] queue key prefix "ns:{q}:" (job records derive from it, same slot)
-- ARGV[2] group, ARGV[3] 1 to undo the delivery count (graceful hand-back), else 0,
-- then pairs of (entry id, job id)
-- Returns the number of jobs put back. An entry no longer ours is left to its holder;
-- a terminal job's entry is just removed.
local prefix, group, undo = ARGV[1], ARGV[2], ARGV[3] == '1'
local n = 0
for i = 4, #ARGV, 2 do
  local eid, jid = ARGV[i], ARGV[i + 1]
  if redis.call('XACK', KEYS[1], group, eid) == 1 then
    redis.call('XDEL', KEYS[1], eid)
    local jkey = prefix .. 'job:' .. jid
    local state = redis.call('HGET', jkey, 'state')
    if state and not TERMINAL[state] then
      requeue(KEYS[1], jkey, jid)
      if undo then redis.call('HINCRBY', jkey, 'deliveries', -1) end
      n = n + 1
    end
  end
end
return n
