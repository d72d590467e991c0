-- fetch.lua: deliver up to N jobs of one queue to a consumer, highest priority first.
--
-- KEYS[1..n]  {q}:p9 .. {q}:p0   ready streams in read order (missing ones are skipped)
-- ARGV[1]     queue key prefix "ns:{q}:" (job records {q}:job:<id>, done latches
--             {q}:done:<id>, the DLQ {q}:dead and the counters hash {q}:stats are derived
--             from it and share the slot)
-- ARGV[2]     consumer group, ARGV[3] consumer name, ARGV[4] how many at most,
-- ARGV[5]     result TTL s, ARGV[6] DLQ max length, ARGV[7] DLQ retention ms,
-- ARGV[8]     the limit definitions as JSON (lib.lua's limits), '' when the worker has none
-- ARGV[9]     cap: the most entries of this queue the consumer may hold pending once the
--             call returns ('' or absent: no cap). The call delivers at most cap minus
--             what the consumer holds already (XPENDING, before anything is read), so a
--             worker's bound on held jobs holds in Redis even when a settle it sent in the
--             same pipeline did not ack. When that leaves nothing to read, the reply is
--             {1} (delivered nothing), not "nothing ready": the streams were not read.
-- Effects     Nothing at all while the queue is paused (the key {q}:paused exists, derived
--             from ARGV[1]; read first, before any write): the reply is then the
--             "nothing ready" one, so the worker waits for the next entry or its timeout.
--             Otherwise XREADGROUP moves entries into the consumer's pending list; each delivered
--             job's record gets state=started, start_ms, deliveries+1. An entry whose job
--             already reached a terminal state (a duplicate after a reclaim race) is
--             acked, deleted and counted in stats.duplicates instead of delivered. An
--             entry whose record stem cannot use (see lib.lua's corrupt) is acked, deleted
--             and dead-lettered with reason corrupt-record; the rest of the batch is
--             delivered. A job whose limits (F.LIMITS) refuse it now is acked, deleted
--             and parked in the wait set of its first limit instance (state throttled,
--             also when that wait set is not empty, unless the limiter released it:
--             a key's jobs never overtake the ones already waiting (FIFO),
--             attempt and deliveries untouched, counted in stats.throttled); the read
--             goes on (up to 8 x N entries per call) so a throttled job costs no slot.
--             Nothing here can fail after XREADGROUP (lib.lua's rule).
-- Returns     {1, d1, d2, ...} with d = {stream index (1-based), entry id, job id or false,
--               envelope or false, attempt, deliveries, raw fields (only when no record)}
--             or, when nothing was ready, {0, last-id-per-stream...} so the caller can
--             block with XREAD from exactly there without missing a new entry.
-- The "nothing ready" reply: {0, last entry id of each stream} (see Returns).
-- Which ready streams exist, each asked once per call (most queues use one priority).
local live = {}
for i = 1, #KEYS do live[i] = redis.call('EXISTS', KEYS[i]) == 1 end

local function nothing_ready()
  local lasts = {0}
  for i = 1, #KEYS do
    local last = live[i] and redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
    if last and last[1] then lasts[#lasts + 1] = last[1][1] else lasts[#lasts + 1] = '0-0' end
  end
  return lasts
end

local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', prefix .. K.PAUSED) == 1 then return nothing_ready() end
local now = now_ms()
local want = tonumber(ARGV[4])
if ARGV[9] and ARGV[9] ~= '' then
  local held = 0
  for i = 1, #KEYS do
    if live[i] then
      local summary = redis.call('XPENDING', KEYS[i], group)
      for _, pair in ipairs(summary[4] or {}) do
        if pair[1] == consumer then held = held + tonumber(pair[2]) end
      end
    end
  end
  want = math.min(want, tonumber(ARGV[9]) - held)
  if want <= 0 then return {1} end
end
local dead = prefix .. K.DEAD
check_type(dead, 'stream')
check_type(prefix .. K.STATS, 'hash')
local defs = false
if ARGV[8] and ARGV[8] ~= '' then defs = cjson.decode(ARGV[8]) end
local out = {1}
local dups, throttled = 0, 0
local scan = want * 8  -- entries this call may read (throttled ones do not count in want)
for i = 1, #KEYS do
  local stream = KEYS[i]
  local more = want > 0 and scan > 0 and live[i]
  while more do
    local ask = math.min(want, scan)
    local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', ask,
      'STREAMS', stream, '>')
    local entries = (reply and reply[1][2]) or {}
    scan = scan - #entries
    more = #entries == ask and scan > 0
    for _, entry in ipairs(entries) do
        local eid, fields = entry[1], entry[2]
        local jid = field(fields, E.ID)
        local jkey = false
        local rec = false
        if jid then
          jkey = prefix .. K.JOB .. jid
          rec = read_record(jkey, F.ENV, F.STATE, F.ATTEMPT, F.DELIVERIES, F.LIMITS,
            F.ADMITTED, F.WAIT_SCORE)
          if rec and not rec[1] and not rec[2] then rec = nil end  -- no record at all
        end
        local lims, over = false, false
        if defs and rec and rec[1] and rec[5] and not TERMINAL[rec[2] or ''] then
          lims = job_limits(rec[5])
          over = lims[1] and refused_by(prefix, jid, lims, defs, now, rec[6])
          if lims[1] and not over and not rec[6] then  -- FIFO: no overtaking jobs that wait
            if redis.pcall('EXISTS', prefix .. K.WAIT .. lims[1][2]) == 1 then over = true end
          end
        end
        local why = rec ~= nil and jid and corrupt(rec)
        if why then
          redis.call('XACK', stream, group, eid)
          redis.call('XDEL', stream, eid)
          local latch = false
          if rec then latch = prefix .. K.DONE .. jid else jkey = false end
          bury(dead, jkey, latch, jid, R.CORRUPT_RECORD, corrupt_error(why),
            (rec and rec[1]) or cjson.encode(fields), S.DEAD, ARGV[5], ARGV[6], ARGV[7], now)
        elseif rec and TERMINAL[rec[2]] then
          redis.call('XACK', stream, group, eid)
          redis.call('XDEL', stream, eid)
          dups = dups + 1
        elseif over and not why then
          redis.call('XACK', stream, group, eid)
          redis.call('XDEL', stream, eid)
          throttle(prefix, jkey, jid, lims[1][2], eid, rec[7])
          throttled = throttled + 1
        elseif rec and rec[1] then
          if lims then
            take_limits(prefix, jid, lims, defs, now, rec[6], stream_priority(stream) .. '|' .. eid)
            if rec[6] then redis.call('HDEL', jkey, F.ADMITTED) end
          end
          local deliveries = counter(rec[4]) + 1
          redis.call('HSET', jkey, F.STATE, S.STARTED, F.START_MS, now, F.WORKER, consumer,
            F.DELIVERIES, deliveries)
          out[#out + 1] = {i, eid, jid, rec[1], counter(rec[3]), deliveries, false}
          want = want - 1
        else
          out[#out + 1] = {i, eid, jid, false, 0, 1, fields}
          want = want - 1
        end
    end
    if want <= 0 then more = false end
  end
end
if throttled > 0 then
  redis.call('HINCRBY', prefix .. K.STATS, C.THROTTLED, throttled)
  redis.call('HINCRBY', prefix .. K.STATS, C.WAITING, throttled)
end
if dups > 0 then redis.call('HINCRBY', prefix .. K.STATS, C.DUPLICATES, dups) end
if #out > 1 then return out end
return nothing_ready()
