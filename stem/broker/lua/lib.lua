-- lib.lua: helpers prepended to every script by stem/broker/scripts.py (not run alone).
-- Touches only the keys its caller passes in. Before it, scripts.py puts the constants it
-- generates from Python (S states, TERMINAL and STATES sets of state values, R dead-letter
-- reasons, K key suffixes, F job record fields, E stream entry fields, C stats counters):
-- no script spells a state, reason, suffix or field name itself (tests/test_keys.py).
--
-- The rule every script keeps: nothing may fail after the first write (Redis does not
-- roll a script back). Per-job values that stem did not write (a record that is not a
-- hash, a counter that is not an integer, an unknown state or priority) are read with
-- the helpers below and cost only that job: it goes to the dead-letter queue with reason
-- 'corrupt-record'. Queue-level keys of the wrong type are refused before any write
-- (check_type), so the script fails whole and the caller sees WRONGTYPE.

-- Fields of a job record, or false when the key holds something other than a hash
-- (HMGET on a missing key gives all-false fields, as for a missing record).
local function read_record(jkey, ...)
  local rec = redis.pcall('HMGET', jkey, ...)
  if rec.err then return false end
  return rec
end

-- A stored counter: 0 when missing, nil when it is not a small non-negative integer.
local function counter(value)
  if not value then return 0 end
  local n = tonumber(value)
  if n and n >= 0 and n < 1e15 and n == math.floor(n) then return n end
  return nil
end

-- A priority as stored in a record: 0-9, else nil.
local function priority(value)
  local n = tonumber(value)
  if n and n >= 0 and n <= 9 and n == math.floor(n) then return n end
  return nil
end

-- Refuse (before any write) when `key` exists with another type than `want`.
local function check_type(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    error('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', stem expects a ' .. want)
  end
end

-- Why a record that exists cannot be used, or false when it can: rec is
-- {env, state, attempt, deliveries} as read by read_record.
local function corrupt(rec)
  if not rec then return 'the job record is not a hash' end
  if rec[2] and not STATES[rec[2]] then return 'unknown state' end
  if not counter(rec[3]) then return 'attempt is not an integer' end
  if not counter(rec[4]) then return 'deliveries is not an integer' end
  return false
end

-- The error JSON stored with a job dead-lettered for a corrupt record.
local function corrupt_error(why)
  return cjson.encode({type = 'CorruptRecord', message = 'stem cannot use this job: ' .. why})
end

-- The server's time in fractional ms, read once per script call: every time one call
-- writes (a record's start_ms or granted_ms, a rate limit's grant in its window guard)
-- is the same instant. Two TIME reads disagreed by the script's own run time (a few ms
-- for a big fetch on a loaded server), so a record's time could be earlier than the grant
-- the guard counted, and the records showed one start too many in a 1-second window.
local script_clock = false
local function script_now()
  if not script_clock then
    local t = redis.call('TIME')
    script_clock = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  end
  return script_clock
end

-- The same instant in whole ms (what records keep).
local function now_ms()
  return math.floor(script_now())
end

-- The value of field `name` in a flat stream-entry field list, or false.
local function field(fields, name)
  if not fields then return false end
  for k = 1, #fields, 2 do
    if fields[k] == name then return fields[k + 1] end
  end
  return false
end

-- How long a settled record and its done latch stay for a waiter that registered, when
-- the job's own retention is shorter (keep_result_s=0): enough to wake and read it.
local WAKE_KEEP_S = 60

-- Settle the record `jkey` (a hash: the caller checked) in state `state` with the fields
-- in `more` (result, or reason and error). It keeps only what a reader of a settled job
-- uses: state, `more`, task name, attempt (when not 0), deliveries (when not 1), the
-- enqueue, start and end times (and the limiter's grant, for a job a limit held back); the envelope, limits and the rest go (a dead job's DLQ
-- entry keeps what a replay needs).
-- A rebuilt small hash stays a listpack, which an edited one holding the envelope does
-- not. It is kept for the record's F.KEEP seconds (the task's keep_result_s) if it has
-- them, else `ttl`; at 0 nothing stays, unless a waiter registered (F.WAITED, wait.lua)
-- or `keep_anyway` (a stale copy of the job may still be delivered: it must find the
-- terminal state). Only a registered waiter gets the done latch pushed. `rec`: the nine
-- fields read below, in that order, when the caller read them already (with its own, in one
-- HMGET); nil to read them here.
local function settle_record(jkey, latch, ttl, now, state, more, keep_anyway, rec)
  rec = rec or redis.call('HMGET', jkey, F.KEEP, F.WAITED, F.ENQ_MS, F.START_MS, F.ATTEMPT,
    F.ENV, F.TASK, F.DELIVERIES, F.GRANTED_MS)
  local keep = rec[1] and counter(rec[1])
  if not keep then keep = counter(ttl) or 0 end
  local waited = rec[2] and latch
  if keep == 0 and keep_anyway then keep = counter(ttl) or 0 end
  if keep == 0 and (waited or keep_anyway) then keep = WAKE_KEEP_S end
  redis.call('DEL', jkey)
  if keep > 0 then
    local fields = {F.STATE, state, F.END_MS, now}
    for k = 1, #more do fields[#fields + 1] = more[k] end
    if rec[3] then fields[#fields + 1] = F.ENQ_MS; fields[#fields + 1] = rec[3] end
    if rec[4] then fields[#fields + 1] = F.START_MS; fields[#fields + 1] = rec[4] end
    -- When a limit held it back, when the limiter let it start (its start follows).
    if rec[9] then fields[#fields + 1] = F.GRANTED_MS; fields[#fields + 1] = rec[9] end
    if rec[5] and rec[5] ~= '0' then
      fields[#fields + 1] = F.ATTEMPT; fields[#fields + 1] = rec[5]
    end
    -- The task's name from the envelope stem wrote ("task" follows "v" and "id", whose
    -- values hold no quote or brace), or a task field already there.
    local task = rec[7]
    if not task and rec[6] then
      task = string.match(rec[6], '^{[^{}]-"task"%s*:%s*"([^"\\]+)"')
    end
    if task then fields[#fields + 1] = F.TASK; fields[#fields + 1] = task end
    -- Delivered once is the rule: a settled record without the field reads 1 (redis.py).
    if rec[8] ~= '1' then
      fields[#fields + 1] = F.DELIVERIES; fields[#fields + 1] = rec[8] or 0
    end
    redis.call('HSET', jkey, unpack(fields))
    redis.call('EXPIRE', jkey, keep)
  end
  if waited then
    redis.call('RPUSH', latch, 1)
    redis.call('EXPIRE', latch, WAKE_KEEP_S)
  end
end

-- Append a job to the dead-letter stream and, when it has a record, mark it settled.
-- dead: the DLQ stream; jkey/latch: the job record and its done latch (false if none,
-- or when the record is not a hash);
-- env: the envelope to keep (or the raw entry fields as JSON when there is no record).
-- The entry keeps the job's limits (E.LIMITS) and retention (E.KEEP), so that a replay
-- runs it under them again.
local function bury(dead, jkey, latch, jid, reason, err, env, state, ttl, maxlen, keep_ms, now)
  local entry = {E.ID, jid or '', E.REASON, reason, E.ERROR, err, E.ENV, env or '',
    E.STATE, state, E.TS, now}
  local kept = jkey and redis.pcall('HMGET', jkey, F.LIMITS, F.KEEP)
  if type(kept) == 'table' and not kept.err then
    if kept[1] then entry[#entry + 1] = E.LIMITS; entry[#entry + 1] = kept[1] end
    if kept[2] then entry[#entry + 1] = E.KEEP; entry[#entry + 1] = kept[2] end
  end
  redis.call('XADD', dead, 'MAXLEN', '~', maxlen, '*', unpack(entry))
  redis.call('XTRIM', dead, 'MINID', '~', now - keep_ms)
  if jkey and redis.call('EXISTS', jkey) == 1 then
    settle_record(jkey, latch, ttl, now, state, {F.REASON, reason, F.ERROR, err}, false)
  end
end

-- Put a job back at the tail of its ready stream (the group exists: the stream does).
local function requeue(stream, jkey, jid)
  redis.call('XADD', stream, '*', E.ID, jid)
  redis.call('HSET', jkey, F.STATE, S.QUEUED)
end

-- Make sure a ready stream and its consumer group exist before adding to it.
local function ensure_group(stream, group)
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  end
end

-- Limits (rate, concurrency, locks). A job's record names its limits in F.LIMITS as
-- "<definition>=<instance>,..." (resolved by the producer); the caller passes the
-- definitions as `defs`: definition -> {concurrency (0: none), tokens per ms (0: none),
-- bucket capacity, window guard size (0: none)}. A definition the caller does not know
-- limits nothing. Per instance: K.LIMIT its rate state, K.SLOTS its held slots (job id ->
-- "<prio>|<entry id>", the delivery holding it: the fencing token), K.WAIT its throttled
-- jobs (FIFO by score); K.WAITING lists instances with waiting jobs, K.HELD those with
-- held slots. Limit keys are read and written with pcall: a key of the wrong type costs
-- only its limit.
--
-- A rate is a GCRA (the token bucket spelled as a theoretical arrival time `tat`): one
-- token every T = 1/rate ms, a start allowed when tat - (capacity - 1) T <= now. A start
-- moves tat on by T from the moment the job could have started: tat itself, or when the
-- job became ready if that is later (the instance was idle), but never from earlier than
-- CARRY_MS before now. So a start that comes late because the limiter woke a few ms after
-- the token was due (or a worker fetched late) does not push every later start back: the
-- achieved rate converges to the configured one instead of losing the lag on every start,
-- and an idle instance still starts spread out (with no state, the first start owes
-- nothing: tat starts from now). Carrying lag could put more starts than
-- the rate in some 1-second window; the window guard forbids it: a ring of the last
-- n = ceil(rate/s) + burst start times (fields r0..r<n-1>, next slot `i`, size `n`), and
-- a start is allowed only when the one n starts ago is >= 1 s old (and a start it held
-- back counts as due from the guard's time on, not before). The guard is kept for
-- n <= 1000 (above that a 1-second window may hold a few starts more, see the guide).
-- Times here are the server's, in fractional ms (TIME has microseconds).

-- The limits named by a record's F.LIMITS value: a list of {definition, instance}.
local function job_limits(value)
  local out = {}
  if not value then return out end
  for def, inst in string.gmatch(value, '([^,=]+)=([^,]+)') do out[#out + 1] = {def, inst} end
  return out
end

-- The most lag a rate limit makes up for (ms): see above.
local CARRY_MS = 250

-- Rate states read in this script call, by key (written through by take_limits), so a
-- fetch of many jobs of one limit reads its hash once, not twice per job.
local rate_cache = {}

-- A rate limit's state: {key, T (ms per token), tolerance ms, unused, guard size, tat
-- or false, the guard's next slot, the start time in it or false, the cache entry};
-- nil without a rate.
local function rate_state(prefix, inst, d)
  local rate, cap = tonumber(d[2]) or 0, tonumber(d[3]) or 1
  if rate <= 0 then return nil end
  local t = 1 / rate
  local key = prefix .. K.LIMIT .. inst
  local n = math.floor(tonumber(d[4]) or 0)
  local c = rate_cache[key]
  if not c then
    local st = redis.pcall('HMGET', key, 'tat', 'i', 'n')
    if st.err then st = {} end
    c = {tat = tonumber(st[1]) or false, i = math.floor(tonumber(st[2]) or 0),
      n = tonumber(st[3]) or 0, ring = {}}
    rate_cache[key] = c
  end
  local slot, oldest = 0, false
  if n > 0 and c.n == n then  -- a ring of another size (the rate changed) is new
    slot = c.i % n
    if c.ring[slot] == nil then
      local v = redis.pcall('HGET', key, 'r' .. slot)
      c.ring[slot] = type(v) == 'string' and tonumber(v) or false
    end
    oldest = c.ring[slot]
  end
  return {key, t, (math.max(1, cap) - 1) * t, 0, n, c.tat, slot, oldest, c}
end

-- The instance whose limit refuses job `jid` now, or false when every limit allows it;
-- second, for a rate refusal, the ms until it allows a start (nil: waits for a slot).
-- prepaid: the limiter already took the job's tokens (it released the job).
local function refused_by(prefix, jid, lims, defs, now, prepaid)
  for _, l in ipairs(lims) do
    local d = defs[l[1]]
    if d then
      local conc = tonumber(d[1]) or 0
      if conc > 0 then
        local slots = prefix .. K.SLOTS .. l[2]
        if redis.pcall('HEXISTS', slots, jid) ~= 1 then
          local n = redis.pcall('HLEN', slots)
          if type(n) == 'number' and n >= conc then return l[2] end
        end
      end
      if not prepaid then
        local r = rate_state(prefix, l[2], d)
        if r then
          local at = script_now()
          local due = 0
          if r[6] then due = r[6] - r[3] - at end
          if r[8] then due = math.max(due, r[8] + 1000 - at) end
          if due > 0 then return l[2], math.ceil(due) end
        end
      end
    end
  end
  return false
end

-- Take what refused_by allowed: a slot per concurrency limit, held by `holder`
-- ("<prio>|<entry id>"), and a token per rate limit (unless prepaid). `since`: when the
-- job became ready (ms), else the time of the entry id in `holder`.
local function take_limits(prefix, jid, lims, defs, now, prepaid, holder, since)
  for _, l in ipairs(lims) do
    local d = defs[l[1]]
    if d then
      if (tonumber(d[1]) or 0) > 0 then
        redis.pcall('HSET', prefix .. K.SLOTS .. l[2], jid, holder)
        redis.pcall('SADD', prefix .. K.HELD, l[2])
      end
      local r = (not prepaid) and rate_state(prefix, l[2], d)
      if r then
        local at = script_now()
        local ready = tonumber(since) or tonumber(string.match(holder, '|(%d+)%-')) or at
        local tat = at  -- no state: the first start (or the first after an idle spell)
        if r[6] then tat = math.max(r[6], math.min(ready, at), at - CARRY_MS) end
        -- A start the guard held back could not have come earlier: the spacing starts
        -- again from the guard's time, so a catch-up burst does not repeat every second.
        if r[8] then tat = math.max(tat, math.min(r[8] + 1000, at)) end
        tat = tat + r[2]
        local key, c = r[1], r[9]
        redis.pcall('HSET', key, 'tat', string.format('%.3f', tat))
        c.tat = tat
        if r[5] > 0 then
          redis.pcall('HSET', key, 'r' .. r[7], string.format('%.3f', at),
            'i', (r[7] + 1) % r[5], 'n', r[5])
          c.ring[r[7]], c.i, c.n = at, (r[7] + 1) % r[5], r[5]
        end
        -- Kept while it can refuse anything (the debt and the guard's second), set with
        -- a second to spare so that a fetch of many jobs sets it once, not per job.
        local expires = math.max(at, tat) + 2000
        if not c.expires or expires > c.expires then
          redis.pcall('PEXPIRE', key, math.ceil(expires - at) + 1000)
          c.expires = expires + 1000
        end
      end
    end
  end
end

-- Give back the slots job `jid` holds through delivery `holder`. A slot that another
-- delivery of the job holds now (after a reclaim) is not this one's to give.
local function free_slots(prefix, jid, limits, holder)
  if not limits then return end
  for _, l in ipairs(job_limits(limits)) do
    local slots = prefix .. K.SLOTS .. l[2]
    if redis.pcall('HGET', slots, jid) == holder then redis.pcall('HDEL', slots, jid) end
  end
end

-- The priority of a ready stream's key (".../p7" -> "7").
local function stream_priority(stream)
  return string.match(stream, '(%d+)$')
end

-- Park job `jid` (entry `eid` already acked and deleted) in the wait set of instance
-- `inst`. Its score keeps FIFO order: the first entry's time, kept if it waits again.
local function throttle(prefix, jkey, jid, inst, eid, old_score)
  local score = tonumber(old_score)
  if not score then
    local ms, seq = string.match(eid, '^(%d+)-(%d+)$')
    score = (tonumber(ms) or 0) * 1024 + math.min(tonumber(seq) or 0, 1023)
  end
  redis.pcall('ZADD', prefix .. K.WAIT .. inst, score, jid)
  redis.pcall('ZADD', prefix .. K.WAITING, 'NX', 0, inst)
  redis.call('HSET', jkey, F.STATE, S.THROTTLED, F.WAIT_SCORE, string.format('%.0f', score))
end
