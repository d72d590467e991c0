-- wait.lua: register a waiter for a job's outcome, or tell it the job has settled.
-- A settle pushes the job's done latch ({q}:done:<id>) only when a waiter registered here
-- (F.WAITED in the record), so a job nobody waits for costs no latch. Registering and
-- settling are both atomic on the record: either the settle sees the mark and pushes the
-- latch, or this script sees the terminal state; no wake-up is lost in between.
--
-- KEYS[1] {q}:job:<id>  the job record
-- Returns 0 when the waiter is registered (the caller then blocks on the latch); 1 when
-- there is nothing to wait for: the job is settled, its record is gone, or its state is
-- not one stem wrote (the caller reads the record at once, and sees it so).
-- Uses only HGETALL and HSET, which the producer's ACL role has (docs/guides/security.md);
-- a refusal or a record that is not a hash is an error for the caller, never a '1' that
-- would send it round its loop again. Writes only after the record is read and checked.
local rec = redis.call('HGETALL', KEYS[1])
local state = field(rec, F.STATE)
if not state or not STATES[state] or TERMINAL[state] then return 1 end
redis.call('HSET', KEYS[1], F.WAITED, 1)
return 0
