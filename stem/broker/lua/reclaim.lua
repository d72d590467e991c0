-- reclaim.lua: take back jobs whose lease expired (their worker died or hung) and hand
-- them back for delivery; dead-letter a job delivered too often (a poison job).
--
-- KEYS[1] {q}:p<prio> a ready stream, KEYS[2] {q}:dead the DLQ stream
-- ARGV[1] queue key prefix "ns:{q}:" (derived, same slot: {q}:job:<id>, {q}:done:<id>,
--         {q}:stats), ARGV[2] group, ARGV[3] reclaimer consumer name,
-- ARGV[4] min idle ms (the lease), ARGV[5] XAUTOCLAIM cursor, ARGV[6] page size,
-- ARGV[7] max deliveries, ARGV[8] result TTL s, ARGV[9] DLQ max length,
-- ARGV[10] DLQ retention ms
-- Returns {next cursor, requeued, dead-lettered, duplicates dropped, taken}: taken is a flat
-- list of job id, task, previous consumer, outcome ("requeued" | "buried") per job taken
-- back or dead-lettered for max-deliveries (for the reclaimer's log line; "" if unknown).
-- The previous consumers come from XPENDING ... IDLE over the same range XAUTOCLAIM pages.
-- A record stem cannot use (lib.lua's corrupt) is dead-lettered with reason
-- corrupt-record: a garbled delivery count must not keep a job from max-deliveries.
-- The expired delivery's concurrency slots are given back (its lease is over).
local prefix, group = ARGV[1], ARGV[2]
check_type(KEYS[2], 'stream')
check_type(prefix .. K.STATS, 'hash')
local owners = {}
for _, p in ipairs(redis.call('XPENDING', KEYS[1], group, 'IDLE', ARGV[4], ARGV[5], '+',
    ARGV[6])) do
  owners[p[1]] = p[2]
end
local reply = redis.call('XAUTOCLAIM', KEYS[1], group, ARGV[3], ARGV[4], ARGV[5],
  'COUNT', ARGV[6])
local now = now_ms()
local requeued, buried, dups = 0, 0, 0
local taken = {}
local function took(eid, jid, env, outcome)
  local ok, doc = pcall(cjson.decode, env)
  local task = ''
  if ok and type(doc) == 'table' and type(doc.task) == 'string' then task = doc.task end
  for _, v in ipairs({jid, task, owners[eid] or '', outcome}) do taken[#taken + 1] = v end
end
for _, entry in ipairs(reply[2]) do
  local eid, fields = entry[1], entry[2]
  redis.call('XACK', KEYS[1], group, eid)
  redis.call('XDEL', KEYS[1], eid)
  local jid = field(fields, E.ID)
  local jkey = false
  local rec = nil
  if jid then
    jkey = prefix .. K.JOB .. jid
    rec = read_record(jkey, F.ENV, F.STATE, F.ATTEMPT, F.DELIVERIES, F.LIMITS)
    if rec and not rec[1] and not rec[2] then rec = nil end  -- no record at all
    free_slots(prefix, jid, rec and rec[5], stream_priority(KEYS[1]) .. '|' .. eid)
  end
  local why = rec ~= nil and corrupt(rec)
  if why then
    local latch = false
    if rec then latch = prefix .. K.DONE .. jid else jkey = false end
    bury(KEYS[2], jkey, latch, jid, R.CORRUPT_RECORD, corrupt_error(why),
      (rec and rec[1]) or cjson.encode(fields or {}), S.DEAD, ARGV[8], ARGV[9], ARGV[10], now)
    buried = buried + 1
  elseif fields and not (rec and rec[1]) then
    local reason = R.UNDECODABLE
    if jid then reason = R.MISSING_RECORD end
    bury(KEYS[2], false, false, jid, reason, '{}', cjson.encode(fields), S.DEAD, ARGV[8],
      ARGV[9], ARGV[10], now)
    buried = buried + 1
  elseif rec and TERMINAL[rec[2]] then
    dups = dups + 1
  elseif rec and counter(rec[4]) >= tonumber(ARGV[7]) then
    local err = cjson.encode({type = 'MaxDeliveries', message =
      'delivered ' .. rec[4] .. ' times without settling (worker killed or hung each time)'})
    bury(KEYS[2], jkey, prefix .. K.DONE .. jid, jid, R.MAX_DELIVERIES,
      err, rec[1], S.DEAD, ARGV[8], ARGV[9], ARGV[10], now)
    buried = buried + 1
    took(eid, jid, rec[1], 'buried')
  elseif rec then
    requeue(KEYS[1], jkey, jid)
    requeued = requeued + 1
    took(eid, jid, rec[1], 'requeued')
  end
end
if requeued > 0 then redis.call('HINCRBY', prefix .. K.STATS, C.RECLAIMED, requeued) end
if dups > 0 then redis.call('HINCRBY', prefix .. K.STATS, C.DUPLICATES, dups) end
return {reply[1], requeued, buried, dups, taken}
