-- deliver.lua: count one more delivery of a job a restarted worker recovered, just
-- before it runs that job alone (fetch.lua counts deliveries for every other path).
--
-- KEYS[1] {q}:job:<id>
-- ARGV[1] consumer name
-- Returns the new delivery count; 0 when the job is already terminal or its record is
-- gone (nothing to run); -1 when the record is one stem cannot use (lib.lua's corrupt):
-- the caller hands it to release.lua, which dead-letters it with reason corrupt-record.
local rec = read_record(KEYS[1], F.ENV, F.STATE, F.ATTEMPT, F.DELIVERIES)
if corrupt(rec) then return -1 end
if not rec[1] or not rec[2] or TERMINAL[rec[2]] then return 0 end
local deliveries = counter(rec[4]) + 1
redis.call('HSET', KEYS[1], F.STATE, S.STARTED, F.START_MS, now_ms(), F.WORKER, ARGV[1],
  F.DELIVERIES, deliveries)
return deliveries
