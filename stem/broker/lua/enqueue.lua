-- enqueue.lua: add jobs to one queue, ready now or delayed, honouring idempotency keys.
--
-- KEYS[1]  {q}:delayed   sorted set of delayed job ids (score: ready-at epoch ms)
-- ARGV[1]  queue key prefix "ns:{q}:"; the other keys are derived from it and share the
--          hash tag of KEYS[1], so they live in the same Cluster slot:
--            {q}:p<prio>       ready stream of that priority (created with the group)
--            {q}:job:<id>      job record (hash)
--            {q}:idem:<key>    idempotency key -> job id (string, with TTL)
-- ARGV[2]  consumer group name
-- ARGV[3]  number of fields per job (6), then per job:
--            job id, envelope JSON, priority, eta epoch ms (0: now),
--            idempotency key ('' for none), idempotency TTL s
-- Returns  flat list: per job, the job id that holds the work and 1 if it was created
--          (0 if an idempotency key or an existing job id matched).
local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
local prefix, group, width = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV, width do
  local jid, env, prio, eta = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local idem, idem_ttl = ARGV[i + 4], ARGV[i + 5]
  local existing = false
  if idem ~= '' then
    local ikey = prefix .. 'idem:' .. idem
    existing = redis.call('GET', ikey)
    if not existing then
      redis.call('SET', ikey, jid, 'EX', idem_ttl)
    end
  end
  local jkey = prefix .. 'job:' .. jid
  if not existing and redis.call('EXISTS', jkey) == 1 then
    existing = jid
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 0
  else
    if eta > now_ms then
      redis.call('HSET', jkey, 'env', env, 'state', 'scheduled', 'prio', prio,
        'attempt', 0, 'deliveries', 0, 'enq_ms', now_ms, 'eta_ms', eta)
      redis.call('ZADD', KEYS[1], eta, jid)
    else
      local stream = prefix .. 'p' .. prio
      if redis.call('EXISTS', stream) == 0 then
        redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
      end
      redis.call('HSET', jkey, 'env', env, 'state', 'queued', 'prio', prio,
        'attempt', 0, 'deliveries', 0, 'enq_ms', now_ms)
      redis.call('XADD', stream, '*', 'id', jid)
    end
    out[#out + 1] = jid
    out[#out + 1] = 1
  end
end
return out
