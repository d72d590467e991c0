-- complete.lua: settle jobs that succeeded: store each result, ack and delete its entry,
-- wake its waiters. Atomic per call, so a result is never stored without the ack or the
-- other way round. One call settles every completed job of one ready stream.
--
-- KEYS[1] {q}:p<prio>  the ready stream the entries came from
-- ARGV[1] queue key prefix "ns:{q}:" (derived, same slot: {q}:job:<id>, {q}:done:<id>,
--         {q}:dead)
-- ARGV[2] group, ARGV[3] result TTL s (a record's own F.KEEP wins), ARGV[4] DLQ max length,
-- ARGV[5] DLQ retention ms,
-- then triples (entry id, job id, result JSON)
-- Returns a string with one character per job: '1' stored, '0' the job was already
-- terminal or its record is gone (its entry is acked either way). A job is stored even if
-- another consumer took its entry over meanwhile: the work is done, and the other
-- delivery will see the terminal state and drop itself. A job whose record is no longer
-- a hash (something else overwrote it) goes to the DLQ with reason corrupt-record, its
-- result kept in the DLQ entry's error, and reads '0'. Every record is read before the
-- first write (lib.lua's rule). Concurrency slots the delivery holds (lib.lua's limits)
-- are given back, fenced by the entry id, whatever the job's state. The record keeps only
-- what a reader uses (lib.lua's settle_record): state, result, times; with the task's
-- keep_result_s=0 nothing, unless a waiter registered or the entry was no longer ours (a
-- reclaimed copy may still be delivered and must find the job settled).
local prefix, group, ttl = ARGV[1], ARGV[2], ARGV[3]
local dead = prefix .. K.DEAD
check_type(dead, 'stream')
local now = now_ms()
local flags, ids, states, limits, lost, recs = {}, {}, {}, {}, {}, {}
for i = 6, #ARGV, 3 do
  ids[#ids + 1] = ARGV[i]
  -- One read per job: the state and limits, then what settle_record keeps (its order).
  local rec = read_record(prefix .. K.JOB .. ARGV[i + 1], F.STATE, F.LIMITS, F.KEEP, F.WAITED,
    F.ENQ_MS, F.START_MS, F.ATTEMPT, F.ENV, F.TASK, F.DELIVERIES, F.GRANTED_MS)
  if rec then states[#states + 1] = rec[1] else states[#states + 1] = 'not-a-hash' end
  limits[#limits + 1] = rec and rec[2]
  lost[#ids] = rec and (rec[3] or ttl) == '0'  -- this job keeps nothing once settled
  recs[#ids] = rec and {unpack(rec, 3, 11)}
end
-- Keeping nothing is safe only if this delivery still held the entry: ack those alone.
for n = 1, #ids do
  if lost[n] then lost[n] = redis.call('XACK', KEYS[1], group, ids[n]) == 0 end
end
local prio = stream_priority(KEYS[1])
for i = 1, #ids, 500 do
  local chunk = {unpack(ids, i, math.min(i + 499, #ids))}
  redis.call('XACK', KEYS[1], group, unpack(chunk))
  redis.call('XDEL', KEYS[1], unpack(chunk))
end
for n = 1, #ids do
  local i = 6 + (n - 1) * 3
  local jid, state = ARGV[i + 1], states[n]
  free_slots(prefix, jid, limits[n], prio .. '|' .. ARGV[i])
  if state == 'not-a-hash' then
    local err = cjson.encode({type = 'CorruptRecord', result = ARGV[i + 2],
      message = 'stem cannot use this job: the job record is not a hash (it ran; its result is here)'})
    bury(dead, false, false, jid, R.CORRUPT_RECORD, err, '', S.DEAD, ttl, ARGV[4], ARGV[5], now)
    flags[n] = '0'
  elseif not state or TERMINAL[state] then
    flags[n] = '0'
  else
    settle_record(prefix .. K.JOB .. jid, prefix .. K.DONE .. jid, ttl, now, S.SUCCEEDED,
      {F.RESULT, ARGV[i + 2]}, lost[n], recs[n])
    flags[n] = '1'
  end
end
return table.concat(flags)
