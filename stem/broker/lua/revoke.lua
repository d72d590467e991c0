-- revoke.lua: revoke one job (stem job revoke): it will never run, or, when it runs now
-- and the caller allows it (terminate), its worker cancels it (the worker polls its held
-- jobs' states, see stem/worker/revoke.py).
--
-- KEYS[1] {q}:job:<id>   the job record
-- KEYS[2] {q}:done:<id>  its done latch
-- KEYS[3] {q}:delayed    the delayed set (a scheduled or retrying job waits there)
-- ARGV[1] job id, ARGV[2] '1' to revoke a started job too (else it is refused),
-- ARGV[3] result TTL s, ARGV[4] the error JSON stored in the record
-- Effects  state=revoked, end_ms, error; the record and latch get the result TTL and the
--          latch is pushed (waiters wake); the id leaves the delayed set. A ready-stream
--          entry or wait-set member of the job is left where it is: fetch and the limiter
--          drop it when they reach it (a terminal job's entry, like a duplicate). Nothing
--          here can fail after the first write (the only typed keys are checked first).
-- Returns  {1, previous state} when revoked; {0, state} when refused (already terminal,
--          or started without terminate); {-1, ''} when there is no usable record.
check_type(KEYS[3], 'zset')
check_type(KEYS[2], 'list')
local rec = read_record(KEYS[1], F.STATE)
if not rec or not rec[1] or not STATES[rec[1]] then return {-1, ''} end
local state = rec[1]
if TERMINAL[state] or (state == S.STARTED and ARGV[2] ~= '1') then return {0, state} end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], F.STATE, S.REVOKED, F.ERROR, ARGV[4], F.END_MS, now_ms())
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('RPUSH', KEYS[2], 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {1, state}
