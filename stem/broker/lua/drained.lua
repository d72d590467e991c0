-- drained.lua: whether a queue has nothing left for a burst worker, in one snapshot.
-- A job moves ready -> waiting for a limit -> ready, delayed -> ready, held -> ready (a
-- hand-back); reads made one after another can each miss a job that moves between
-- them (a burst worker then exits with work left), one script cannot.
--
-- KEYS[1..n] {q}:p<prio> the ready streams, KEYS[n+1] {q}:delayed, KEYS[n+2] {q}:stats
-- Touches only KEYS (XLEN, ZCARD, HGET).
-- Returns 1 when no stream has an entry (ready or held: settled entries are deleted),
-- nothing is delayed and no job waits for a limit; else 0.
local n = #KEYS - 2
for i = 1, n do
  if redis.call('XLEN', KEYS[i]) > 0 then return 0 end
end
if redis.call('ZCARD', KEYS[n + 1]) > 0 then return 0 end
local waiting = tonumber(redis.call('HGET', KEYS[n + 2], C.WAITING) or '0') or 0
if waiting > 0 then return 0 end
return 1
