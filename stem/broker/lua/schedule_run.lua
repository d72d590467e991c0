-- schedule_run.lua: record one run of a beat entry in its run record (JSON in a hash).
--
-- KEYS[1]  ns:schedule:state   hash: entry name -> run record JSON
-- ARGV[1]  entry name
-- ARGV[2]  the run as a JSON object (job_id, by, manual, catch_up, tick_ms, ...)
-- ARGV[3]  the tick this run fired (epoch ms), or '' for a manual run (not a tick)
-- ARGV[4]  the tick's fire time (epoch ms, tick + jitter), or '' for a manual run
-- ARGV[5]  how many drift samples to keep (the newest)
-- Returns  the drift in ms (server now - fire time; negative if fired early), or nil for
--          a manual run.
--
-- The record is {last_tick_ms, last_run, drifts_ms}. Time is the server's (TIME), so the
-- drift of every replica is measured on one clock. last_tick_ms only moves forward: a
-- replica that records an older tick late (a slow thread, a slow network) adds its drift
-- sample but does not move the entry's progress or its last run back.
local now = now_ms()
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local ok, rec = false, nil
if raw then ok, rec = pcall(cjson.decode, raw) end
-- A damaged record (hand-edited, or from a future version) is replaced, not fatal.
if not ok or type(rec) ~= 'table' then rec = {} end
local run = cjson.decode(ARGV[2])
run['fired_at_ms'] = now
local drift = false
local newest = true
if ARGV[3] ~= '' then
  local tick = tonumber(ARGV[3])
  drift = now - tonumber(ARGV[4])
  run['drift_ms'] = drift
  local last = tonumber(rec['last_tick_ms'])
  if last and last >= tick then
    newest = false
  else
    rec['last_tick_ms'] = tick
  end
  local drifts = rec['drifts_ms']
  if type(drifts) ~= 'table' then drifts = {} end
  drifts[#drifts + 1] = drift
  local keep = tonumber(ARGV[5])
  while #drifts > keep do table.remove(drifts, 1) end
  rec['drifts_ms'] = drifts
end
if newest then rec['last_run'] = run end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
return drift
