-- limits.lua: one round of the rate limiter for one queue: take back slots of dead
-- deliveries, then release throttled jobs that may run now, round-robin across limit
-- instances and FIFO within one.
--
-- KEYS        none declared: every key is derived from the queue prefix (same slot):
--             {q}:limheld, {q}:limwait, {q}:slots:<i>, {q}:wait:<i>, {q}:lim:<i>,
--             {q}:job:<id>, {q}:p<prio>, {q}:stats
-- ARGV[1]     queue key prefix "ns:{q}:", ARGV[2] consumer group,
-- ARGV[3]     the limit definitions as JSON (lib.lua's limits),
-- ARGV[4]     the most jobs to release, ARGV[5] the most instances to visit
-- Effects     Sweep (up to ARGV[5] instances with held slots, sampled at random: later
--             rounds cover the rest): a slot whose holding entry is no longer in its stream (settled,
--             reclaimed, trimmed: its delivery is over) is deleted (stats.slots_freed).
--             Release: instances are visited least recently served first; each pass
--             looks at the head of each one's wait set and, when every limit the job
--             names allows it, takes its tokens and slots (the slot held by the new
--             entry), XADDs it to its ready stream, state queued, F.ADMITTED set (fetch
--             then takes nothing again), F.GRANTED_MS the time it was released. A head
--             that may not run blocks its instance
--             for this round (FIFO); passes repeat while something was released. A wait
--             set entry whose job is no longer throttled (settled, replayed) is dropped;
--             one whose record stem cannot use goes to its stream for fetch to
--             dead-letter with the reason.
--             Every write tolerates bad data (pcall on limit keys), so nothing fails
--             after the first one (lib.lua's rule).
-- Returns     {released, slots freed, instances still waiting, total ms the released
--             jobs waited, ms until the next token of a blocked instance (-1: none is
--             waiting for a token), so the limiter wakes when one is due}
local prefix, group = ARGV[1], ARGV[2]
local defs = cjson.decode(ARGV[3])
local budget, visit = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local freed = 0
local held = redis.pcall('SRANDMEMBER', prefix .. K.HELD, visit)  -- a sample: rounds cover all
if held.err then held = {} end
for _, inst in ipairs(held) do
  local slots = prefix .. K.SLOTS .. inst
  local pairs_ = redis.pcall('HGETALL', slots)
  if pairs_.err then pairs_ = {} end
  for k = 1, #pairs_, 2 do
    local prio, eid = string.match(pairs_[k + 1], '^(%d+)|(.+)$')
    local alive = false
    if prio then
      local e = redis.pcall('XRANGE', prefix .. K.STREAM .. prio, eid, eid)
      alive = not e.err and e[1] ~= nil
    end
    if not alive then
      redis.pcall('HDEL', slots, pairs_[k])
      freed = freed + 1
    end
  end
  if redis.pcall('EXISTS', slots) == 0 then redis.pcall('SREM', prefix .. K.HELD, inst) end
end

local waiting = prefix .. K.WAITING
local insts = redis.pcall('ZRANGE', waiting, 0, visit - 1)
if insts.err then insts = {} end
local open, released, waited, served, dropped = {}, 0, 0, 0, 0
local next_ms = -1
for n, inst in ipairs(insts) do open[n] = true end
local progress = true
while progress and released < budget do
  progress = false
  for n, inst in ipairs(insts) do
    if open[n] and released < budget then
      local wait = prefix .. K.WAIT .. inst
      local head = redis.pcall('ZRANGE', wait, 0, 0, 'WITHSCORES')
      if head.err or not head[1] then
        open[n] = false
      else
        local jid = head[1]
        local jkey = prefix .. K.JOB .. jid
        local rec = read_record(jkey, F.STATE, F.LIMITS, F.PRIO)
        local prio = rec and priority(rec[3])
        if rec and rec[1] and rec[1] ~= S.THROTTLED then
          redis.pcall('ZREM', wait, jid)  -- not waiting any more (settled, replayed): drop
          dropped = dropped + 1
          progress = true
        elseif not (rec and rec[1] and prio) then
          -- A record stem cannot use: hand the job to the workers, whose fetch
          -- dead-letters it with its reason (never dropped silently).
          local stream = prefix .. K.STREAM .. (prio or 0)
          ensure_group(stream, group)  -- a bare XADD would make a stream no fetch can read
          if redis.pcall('XADD', stream, '*', E.ID, jid).err then open[n] = false else
            redis.pcall('ZREM', wait, jid)
            dropped = dropped + 1
            progress = true
          end
        else
          local lims = job_limits(rec[2])
          local over, due = refused_by(prefix, jid, lims, defs, now, false)
          if over then
            open[n] = false
            if due and (next_ms < 0 or due < next_ms) then next_ms = due end
          else
            local stream = prefix .. K.STREAM .. prio
            ensure_group(stream, group)
            local eid = redis.pcall('XADD', stream, '*', E.ID, jid)
            if type(eid) ~= 'string' then  -- the stream is not a stream: leave the job
              open[n] = false
            else
              local since = math.floor((tonumber(head[2]) or 0) / 1024)  -- ready since
              take_limits(prefix, jid, lims, defs, now, false, prio .. '|' .. eid, since)
              redis.pcall('ZREM', wait, jid)
              redis.call('HSET', jkey, F.STATE, S.QUEUED, F.ADMITTED, 1, F.GRANTED_MS, now)
              waited = waited + math.max(0, now - since)
              released = released + 1
              progress = true
            end
          end
        end
      end
    end
  end
end
-- Visited instances go to the back (round-robin across rounds); empty ones leave.
for n, inst in ipairs(insts) do
  served = served + 1
  if redis.pcall('EXISTS', prefix .. K.WAIT .. inst) == 1 then
    redis.pcall('ZADD', waiting, now * 1000 + served, inst)
  else
    redis.pcall('ZREM', waiting, inst)
  end
end
if released > 0 then
  redis.pcall('HINCRBY', prefix .. K.STATS, C.RELEASED, released)
  redis.pcall('HINCRBY', prefix .. K.STATS, C.WAIT_MS, waited)
end
if released + dropped > 0 then
  redis.pcall('HINCRBY', prefix .. K.STATS, C.WAITING, -(released + dropped))
end
if freed > 0 then redis.pcall('HINCRBY', prefix .. K.STATS, C.SLOTS_FREED, freed) end
return {released, freed, redis.pcall('ZCARD', waiting), waited, next_ms}
