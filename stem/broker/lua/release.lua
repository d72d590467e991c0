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
-- A record stem cannot use (lib.lua's corrupt) is dead-lettered with reason
-- corrupt-record instead of being put back. The delivery's concurrency slots are given
-- back (fenced by the entry id): the job takes them again when it is next fetched.
local prefix, group, undo = ARGV[1], ARGV[2], ARGV[3] == '1'
local max_deliveries = tonumber(ARGV[4])
check_type(KEYS[2], 'stream')
local now = now_ms()
local n = 0
for i = 8, #ARGV, 2 do
  local eid, jid = ARGV[i], ARGV[i + 1]
  if redis.call('XACK', KEYS[1], group, eid) == 1 then
    redis.call('XDEL', KEYS[1], eid)
    local jkey = prefix .. K.JOB .. jid
    local rec = read_record(jkey, F.ENV, F.STATE, F.ATTEMPT, F.DELIVERIES, F.LIMITS)
    local why = corrupt(rec)
    free_slots(prefix, jid, rec and rec[5], stream_priority(KEYS[1]) .. '|' .. eid)
    local state, deliveries = rec and rec[2], rec and counter(rec[4])
    if why then
      local latch = false
      if rec then latch = prefix .. K.DONE .. jid else jkey = false end
      bury(KEYS[2], jkey, latch, jid, R.CORRUPT_RECORD, corrupt_error(why),
        (rec and rec[1]) or '', S.DEAD, ARGV[5], ARGV[6], ARGV[7], now)
    elseif state and not TERMINAL[state] then
      if not undo and max_deliveries > 0 and deliveries >= max_deliveries then
        local err = cjson.encode({type = 'MaxDeliveries', message =
          'delivered ' .. deliveries .. ' times; its worker died each time'})
        bury(KEYS[2], jkey, prefix .. K.DONE .. jid, jid, R.MAX_DELIVERIES, err, rec[1],
          S.DEAD, ARGV[5], ARGV[6], ARGV[7], now)
      else
        requeue(KEYS[1], jkey, jid)
        if undo and deliveries > 0 then
          redis.call('HSET', jkey, F.DELIVERIES, deliveries - 1)
        end
        n = n + 1
      end
    end
  end
end
return n
