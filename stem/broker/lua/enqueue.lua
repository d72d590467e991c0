-- enqueue.lua: add jobs to one queue, ready now or delayed, honouring idempotency keys.
-- standalone: sent without lib.lua and with its constants inlined (scripts.py): Redis
-- runs a script's whole source on every call, and enqueue is the producer's hot path.
--
-- KEYS[1]  {q}:delayed   sorted set of delayed job ids (score: ready-at epoch ms)
-- ARGV[1]  queue key prefix "ns:{q}:"; the other keys are derived from it and share the
--          hash tag of KEYS[1], so they live in the same Cluster slot:
--            {q}:p<prio>       ready stream of that priority (created with the group)
--            {q}:job:<id>      job record (hash)
--            {q}:idem:<key>    idempotency key -> job id (string, with TTL)
-- ARGV[2]  consumer group name
-- ARGV[3..] one argument per job (fewer arguments: packing them is the client's cost):
--            "<job id>\n<priority>\n<eta epoch ms, 0: now>\n<idempotency TTL s>\n
--             <idempotency key or empty>\n<1 if the caller chose the id, else 0>\n
--             <limits: "<definition>=<instance>,..." or empty>\n
--             <seconds to keep the settled record, or empty: the worker's default>\n
--             <envelope JSON>"
--            (the envelope is last, so only the key and id must be free
--            of newlines; the client checks that). An id stem generated (80 random bits)
--            cannot exist yet, so only a caller-chosen id is checked for a repeat.
--          attempt and deliveries are not written: a missing field reads as 0.
-- Returns  {flags, id...}: flags has one character per job, '1' created or '0' matched an
--          earlier job (idempotency key or existing id); then, for each '0' only, the id
--          of the job that holds the work. When every job was created (no '0'), flags
--          alone, as a string: a table reply costs Redis more to convert, and the client
--          more to parse.
--
-- Cost: a ready job is one XADD and one HSET (plus GET/SET for an idempotency key, EXISTS
-- for a chosen id). Its enqueue time is the ms part of the entry id XADD gave it (the
-- server's clock, as TIME would give); TIME is read only when a job has an ETA. XADD
-- NOMKSTREAM finds a missing stream without an EXISTS: the stream and its group are then
-- created together, and the job added again. Writes come in the order that cannot fail
-- half-way for one job: XADD (or ZADD) first (a key of the wrong type fails the script
-- before any write of that job), then the record, whose key is new (or checked missing),
-- then the idempotency key. Jobs before a failing one in the same call stay written: the
-- client reports the chunk as refused (EnqueueIncomplete) and says so.
local prefix, group = ARGV[1], ARGV[2]
local flags, out = {}, {''}
local now_ms = false
local PARTS = '^([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n(.*)$'
for i = 3, #ARGV do
  local jid, prio, eta, idem_ttl, idem, chosen, limits, keep, env = string.match(ARGV[i], PARTS)
  eta = tonumber(eta)
  local existing, ikey = false, false
  if idem ~= '' then
    ikey = prefix .. K.IDEM .. idem
    existing = redis.call('GET', ikey)
  end
  local jkey = prefix .. K.JOB .. jid
  if not existing and chosen == '1' and redis.call('EXISTS', jkey) == 1 then
    existing = jid
  end
  if existing then
    flags[#flags + 1] = '0'
    out[#out + 1] = existing
  else
    if eta > 0 and not now_ms then
      local t = redis.call('TIME')
      now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
    end
    local rec
    if eta > 0 and eta > now_ms then
      rec = {F.ENV, env, F.STATE, S.SCHEDULED, F.PRIO, prio, F.ENQ_MS, now_ms, F.ETA_MS, eta}
      redis.call('ZADD', KEYS[1], eta, jid)
    else
      local stream = prefix .. K.STREAM .. prio
      local eid = redis.call('XADD', stream, 'NOMKSTREAM', '*', E.ID, jid)
      if not eid then
        redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
        eid = redis.call('XADD', stream, '*', E.ID, jid)
      end
      rec = {F.ENV, env, F.STATE, S.QUEUED, F.PRIO, prio, F.ENQ_MS, string.match(eid, '^%d+')}
    end
    if limits ~= '' then rec[#rec + 1] = F.LIMITS; rec[#rec + 1] = limits end
    if keep ~= '' then rec[#rec + 1] = F.KEEP; rec[#rec + 1] = keep end
    redis.call('HSET', jkey, unpack(rec))
    if ikey then  -- last: a key of the wrong type above leaves no key naming a lost job
      redis.call('SET', ikey, jid, 'EX', idem_ttl)
    end
    flags[#flags + 1] = '1'
  end
end
out[1] = table.concat(flags)
if #out == 1 then return out[1] end
return out
