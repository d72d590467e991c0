-- lib.lua: helpers prepended to every script by stem/broker/scripts.py (not run alone).
-- Touches only the keys its caller passes in.

local TERMINAL = {succeeded = true, failed = true, dead = true}

local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end

-- The value of field `name` in a flat stream-entry field list, or false.
local function field(fields, name)
  if not fields then return false end
  for k = 1, #fields, 2 do
    if fields[k] == name then return fields[k + 1] end
  end
  return false
end

-- Append a job to the dead-letter stream and, when it has a record, mark it settled.
-- dead: the DLQ stream; jkey/latch: the job record and its done latch (false if none);
-- env: the envelope to keep (or the raw entry fields as JSON when there is no record).
local function bury(dead, jkey, latch, jid, reason, err, env, state, ttl, maxlen, keep_ms, now)
  redis.call('XADD', dead, 'MAXLEN', '~', maxlen, '*', 'id', jid or '', 'reason', reason,
    'error', err, 'env', env or '', 'state', state, 'ts', now)
  redis.call('XTRIM', dead, 'MINID', '~', now - keep_ms)
  if jkey and redis.call('EXISTS', jkey) == 1 then
    redis.call('HSET', jkey, 'state', state, 'reason', reason, 'error', err, 'end_ms', now)
    redis.call('EXPIRE', jkey, ttl)
    redis.call('RPUSH', latch, 1)
    redis.call('EXPIRE', latch, ttl)
  end
end

-- Put a job back at the tail of its ready stream (the group exists: the stream does).
local function requeue(stream, jkey, jid)
  redis.call('XADD', stream, '*', 'id', jid)
  redis.call('HSET', jkey, 'state', 'queued')
end

-- Make sure a ready stream and its consumer group exist before adding to it.
local function ensure_group(stream, group)
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
  end
end
