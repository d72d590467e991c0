-- enqueue.lua: add jobs to one queue, ready now or delayed, honouring idempotency keys.
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
--          of the job that holds the work. (Compact: parsing the reply is client time.)
local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
local prefix, group = ARGV[1], ARGV[2]
local flags, out, ready = {}, {''}, {}
for i = 3, #ARGV do
  local job = ARGV[i]
  local fields, pos = {}, 1
  for f = 1, 8 do
    local nl = string.find(job, '\n', pos, true)
    fields[f] = string.sub(job, pos, nl - 1)
    pos = nl + 1
  end
  local jid, prio, eta = fields[1], fields[2], tonumber(fields[3])
  local idem_ttl, idem, chosen = fields[4], fields[5], fields[6]
  local limits, keep = fields[7], fields[8]
  local env = string.sub(job, pos)
  local existing = false
  if idem ~= '' then
    local ikey = prefix .. K.IDEM .. idem
    existing = redis.call('GET', ikey)
    if not existing then
      redis.call('SET', ikey, jid, 'EX', idem_ttl)
    end
  end
  local jkey = prefix .. K.JOB .. jid
  if not existing and chosen == '1' and redis.call('EXISTS', jkey) == 1 then
    existing = jid
  end
  if existing then
    flags[#flags + 1] = '0'
    out[#out + 1] = existing
  else
    if eta > now_ms then
      redis.call('HSET', jkey, F.ENV, env, F.STATE, S.SCHEDULED, F.PRIO, prio,
        F.ENQ_MS, now_ms, F.ETA_MS, eta)
      redis.call('ZADD', KEYS[1], eta, jid)
      if limits ~= '' then redis.call('HSET', jkey, F.LIMITS, limits) end
      if keep ~= '' then redis.call('HSET', jkey, F.KEEP, keep) end
    else
      local stream = prefix .. K.STREAM .. prio
      if not ready[stream] and redis.call('EXISTS', stream) == 0 then
        redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
      end
      ready[stream] = true
      redis.call('HSET', jkey, F.ENV, env, F.STATE, S.QUEUED, F.PRIO, prio, F.ENQ_MS, now_ms)
      if limits ~= '' then redis.call('HSET', jkey, F.LIMITS, limits) end
      if keep ~= '' then redis.call('HSET', jkey, F.KEEP, keep) end
      redis.call('XADD', stream, '*', E.ID, jid)
    end
    flags[#flags + 1] = '1'
  end
end
out[1] = table.concat(flags)
return out
