-- bury.lua: settle a job into the dead-letter queue with a reason: ack, delete the entry,
-- append to the DLQ (keeping the envelope, or the raw entry when it has none) and mark the
-- record failed/dead, in one step.
--
-- KEYS[1] {q}:p<prio> the ready stream, KEYS[2] {q}:job:<id>, KEYS[3] {q}:dead,
-- KEYS[4] {q}:done:<id>
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] job id ('' when unknown), ARGV[4] reason,
-- ARGV[5] error JSON, ARGV[6] raw entry as JSON (used when there is no record),
-- ARGV[7] state (failed|dead), ARGV[8] result TTL s (a record's F.KEEP wins),
-- ARGV[9] DLQ max length,
-- ARGV[10] DLQ retention ms
-- Returns 1 when buried; 0 when already terminal; -1 when the entry is no longer ours.
-- The record is rebuilt settled (lib.lua's settle_record: no envelope, which the DLQ
-- entry keeps; deleted with keep_result_s=0 unless a waiter registered).
-- A record that is not a hash is left alone (the DLQ entry keeps the raw entry). The
-- delivery's concurrency slots are given back (fenced by the entry id).
check_type(KEYS[3], 'stream')
local env, jkey, limits = false, false, false
local holder = stream_priority(KEYS[1]) .. '|' .. ARGV[2]
local prefix = string.sub(KEYS[2], 1, #KEYS[2] - #K.JOB - #ARGV[3])
if ARGV[3] ~= '' then
  local rec = read_record(KEYS[2], F.ENV, F.STATE, F.LIMITS)
  limits = rec and rec[3]
  if rec and rec[2] and TERMINAL[rec[2]] then
    if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
    redis.call('XDEL', KEYS[1], ARGV[2])
    free_slots(prefix, ARGV[3], limits, holder)
    return 0
  end
  if rec and rec[1] then env, jkey = rec[1], KEYS[2] end
end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
redis.call('XDEL', KEYS[1], ARGV[2])
free_slots(prefix, ARGV[3], limits, holder)
bury(KEYS[3], jkey, KEYS[4], ARGV[3], ARGV[4], ARGV[5], env or ARGV[6], ARGV[7], ARGV[8],
  ARGV[9], ARGV[10], now_ms())
return 1
