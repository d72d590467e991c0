-- retry.lua: settle a failed attempt that will be retried: ack and delete the entry and
-- schedule the job in the delayed set, in one step (the unacked entry is never a timer).
--
-- KEYS[1] {q}:p<prio> the ready stream, KEYS[2] {q}:job:<id>, KEYS[3] {q}:delayed,
-- KEYS[4] {q}:dead, KEYS[5] {q}:done:<id>
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] job id, ARGV[4] delay ms, ARGV[5] error JSON,
-- ARGV[6] result TTL s, ARGV[7] DLQ max length, ARGV[8] DLQ retention ms
-- Returns 1 when scheduled; 0 when the job is already terminal (or its record stem cannot
-- use: then it is dead-lettered with reason corrupt-record); -1 when the entry no longer
-- belongs to this consumer (its lease was lost: the current holder decides, not us).
-- Everything is read and checked before the first write (lib.lua's rule). The delivery's
-- concurrency slots are given back (fenced by the entry id).
check_type(KEYS[3], 'zset')
check_type(KEYS[4], 'stream')
local rec = read_record(KEYS[2], F.ENV, F.STATE, F.ATTEMPT, F.DELIVERIES, F.LIMITS)
local why = corrupt(rec)
local delay = tonumber(ARGV[4])
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
redis.call('XDEL', KEYS[1], ARGV[2])
local prefix = string.sub(KEYS[2], 1, #KEYS[2] - #K.JOB - #ARGV[3])
free_slots(prefix, ARGV[3], rec and rec[5], stream_priority(KEYS[1]) .. '|' .. ARGV[2])
local now = now_ms()
if why then
  local jkey, latch = false, false
  if rec then jkey, latch = KEYS[2], KEYS[5] end
  bury(KEYS[4], jkey, latch, ARGV[3], R.CORRUPT_RECORD, corrupt_error(why),
    (rec and rec[1]) or '', S.DEAD, ARGV[6], ARGV[7], ARGV[8], now)
  return 0
end
if not rec[2] or TERMINAL[rec[2]] then return 0 end
redis.call('HSET', KEYS[2], F.STATE, S.RETRYING, F.ERROR, ARGV[5], F.DELIVERIES, 0,
  F.ETA_MS, now + delay, F.ATTEMPT, counter(rec[3]) + 1)
redis.call('ZADD', KEYS[3], now + delay, ARGV[3])
return 1
