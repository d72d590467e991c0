-- replay.lua: put dead-lettered jobs back on their ready stream, with the same job id.
-- The record is rebuilt from the envelope kept in the DLQ entry (the record may have
-- expired); attempt and delivery counts start again; the done latch is cleared so waiters
-- wait for the new outcome. Replay is the one operator action that moves a job out of a
-- terminal state.
--
-- KEYS[1] {q}:dead
-- ARGV[1] queue key prefix "ns:{q}:" (derived, same slot: {q}:job:<id>, {q}:done:<id>,
--         {q}:p<prio>), ARGV[2] group, then DLQ entry ids, each optionally followed by
--         "\n" and an envelope that replaces the kept one (an operator's re-signed copy,
--         `stem dlq replay --resign`; entry ids hold no newline)
-- Returns the job ids replayed; entries without a usable envelope (raw payloads, or a
-- priority outside 0-9, whose stream no worker reads) stay put.
-- The job's limits and retention (E.LIMITS, E.KEEP, kept by lib.lua's bury) go back
-- into the record.
local prefix, group = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV do
  local eid, newenv = ARGV[i], false
  local nl = string.find(eid, '\n', 1, true)
  if nl then eid, newenv = string.sub(eid, 1, nl - 1), string.sub(eid, nl + 1) end
  local got = redis.call('XRANGE', KEYS[1], eid, eid)
  if got[1] then
    local fields = got[1][2]
    local jid, env = field(fields, E.ID), field(fields, E.ENV)
    if newenv then env = newenv end
    local ok, decoded = pcall(cjson.decode, env or '')
    -- (the envelope's key "task" is spelled as the record's field F.TASK)
    local prio = ok and type(decoded) == 'table' and priority(decoded['priority'] or 0)
    if jid and jid ~= '' and prio and decoded[F.TASK] then
      local jkey = prefix .. K.JOB .. jid
      local stream = prefix .. K.STREAM .. prio
      redis.call('DEL', jkey, prefix .. K.DONE .. jid)
      redis.call('HSET', jkey, F.ENV, env, F.STATE, S.QUEUED, F.PRIO, prio, F.ATTEMPT, 0,
        F.DELIVERIES, 0, F.ENQ_MS, now_ms(), F.REPLAYED, 1)
      local limits = field(fields, E.LIMITS)
      if limits then redis.call('HSET', jkey, F.LIMITS, limits) end
      local keep = field(fields, E.KEEP)
      if keep then redis.call('HSET', jkey, F.KEEP, keep) end
      ensure_group(stream, group)
      redis.call('XADD', stream, '*', E.ID, jid)
      redis.call('XDEL', KEYS[1], eid)
      out[#out + 1] = jid
    end
  end
end
return out
