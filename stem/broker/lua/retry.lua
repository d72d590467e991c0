-- retry.lua: settle a failed attempt that will be retried: ack and delete the entry and
-- schedule the job in the delayed set, in one step (the unacked entry is never a timer).
--
-- KEYS[1] {q}:p<prio> the ready stream, KEYS[2] {q}:job:<id>, KEYS[3] {q}:delayed
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] job id, ARGV[4] delay ms, ARGV[5] error JSON
-- Returns 1 when scheduled; 0 when the job is already terminal; -1 when the entry no longer
-- belongs to this consumer (its lease was lost: the current holder decides, not us).
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 0 then return -1 end
redis.call('XDEL', KEYS[1], ARGV[2])
local state = redis.call('HGET', KEYS[2], 'state')
if not state or TERMINAL[state] then return 0 end
local now = now_ms()
redis.call('HSET', KEYS[2], 'state', 'retrying', 'error', ARGV[5], 'deliveries', 0,
  'eta_ms', now + tonumber(ARGV[4]))
redis.call('HINCRBY', KEYS[2], 'attempt', 1)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[3])
return 1
