-- release.lua: hand held jobs back for immediate redelivery (graceful shutdown, or a
-- restarted worker recovering its own pending entries).
--
-- KEYS[1] {q}:p<prio> the ready stream the entries came from, KEYS[2] {q}:dead
-- ARGV[1] queue key prefix "ns:{q}:" (derived, same slot: {q}:job:<id>, {q}:done:<id>)
-- ARGV[2] group, ARGV[3] 1 to undo the delivery count (graceful hand-back), else 0,
-- ARGV[4] max deliveries (0: no check), ARGV[5] result TTL s, ARGV[6] DLQ max length,
-- ARGV[7] DLQ retention ms, then pairs of (entry id, job id)
-- Returns the number of jobs put back. An entry no longer ours is left to its holder;
-- a terminal job's entry is just removed. A recovered job (not a graceful hand-back)
-- already delivered max-deliveries times went down with its worker each time: it is
-- dead-lettered with reason max-deliveries instead of being run again.
local prefix, group, undo = ARGV[1], ARGV[2], ARGV[3] == '1'
local max_deliveries = tonumber(ARGV[4])
local now = now_ms()
local n = 0
for i = 8, #ARGV, 2 do
  local eid, jid = ARGV[i], ARGV[i + 1]
  if redis.call('XACK', KEYS[1], group, eid) == 1 then
    redis.call('XDEL', KEYS[1], eid)
    local jkey = prefix .. 'job:' .. jid
    local rec = redis.call('HMGET', jkey, 'state', 'deliveries', 'env')
    local state, deliveries = rec[1], tonumber(rec[2]) or 0
    if state and not TERMINAL[state] then
      if not undo and max_deliveries > 0 and deliveries >= max_deliveries then
        local err = cjson.encode({type = 'MaxDeliveries', message =
          'delivered ' .. deliveries .. ' times; its worker died each time'})
        bury(KEYS[2], jkey, prefix .. 'done:' .. jid, jid, 'max-deliveries', err, rec[3],
          'dead', ARGV[5], ARGV[6], ARGV[7], now)
      else
        requeue(KEYS[1], jkey, jid)
        if undo then redis.call('HINCRBY', jkey, 'deliveries', -1) end
        n = n + 1
      end
    end
  end
end
return n
