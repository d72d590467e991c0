-- promote.lua: move delayed jobs whose time has come onto their ready streams.
-- Time comes from the server (TIME), so producers' and workers' clocks do not matter.
--
-- KEYS[1] {q}:delayed  sorted set of job ids scored by ready-at epoch ms
-- ARGV[1] queue key prefix "ns:{q}:" (derived, same slot: {q}:job:<id>, {q}:p<prio>,
--         {q}:done:<id>, {q}:dead)
-- ARGV[2] group, ARGV[3] how many at most, ARGV[4] result TTL s, ARGV[5] DLQ max length,
-- ARGV[6] DLQ retention ms
-- Returns {promoted count, score of the next delayed job or -1, server now ms}; the score
-- is returned as Redis prints it (it may be in exponent form: parse it as a float).
-- A delayed id whose record expired is dropped from the set (nothing left to run); one
-- whose record stem cannot use (not a hash, a priority outside 0-9, an unknown state, a
-- counter that is not an integer) is dead-lettered with reason corrupt-record.
local prefix, group = ARGV[1], ARGV[2]
local dead = prefix .. K.DEAD
check_type(dead, 'stream')
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
if #due > 0 then
  for p = 0, 9 do check_type(prefix .. K.STREAM .. p, 'stream') end
end
local n = 0
for _, jid in ipairs(due) do
  local jkey = prefix .. K.JOB .. jid
  local rec = read_record(jkey, F.ENV, F.STATE, F.ATTEMPT, F.DELIVERIES, F.PRIO)
  local expired = rec and not rec[1] and not rec[2]
  local why = not expired and corrupt(rec)
  if not why and not expired then
    if not rec[1] then why = 'the record has no envelope'
    elseif not priority(rec[5]) then why = 'priority is not 0-9'
    end
  end
  local stream = not why and not expired and prefix .. K.STREAM .. priority(rec[5])
  redis.call('ZREM', KEYS[1], jid)
  if why then
    local latch = false
    if rec then latch = prefix .. K.DONE .. jid else jkey = false end
    bury(dead, jkey, latch, jid, R.CORRUPT_RECORD, corrupt_error(why),
      (rec and rec[1]) or '', S.DEAD, ARGV[4], ARGV[5], ARGV[6], now)
  elseif stream and not TERMINAL[rec[2]] then
    ensure_group(stream, group)
    redis.call('XADD', stream, '*', E.ID, jid)
    if rec[2] == S.SCHEDULED then redis.call('HSET', jkey, F.STATE, S.QUEUED) end
    n = n + 1
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {n, nxt[2] or -1, now}
