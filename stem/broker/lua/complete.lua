-- complete.lua: settle jobs that succeeded: store each result, ack and delete its entry,
-- wake its waiters. Atomic per call, so a result is never stored without the ack or the
-- other way round. One call settles every completed job of one ready stream.
--
-- KEYS[1] {q}:p<prio>  the ready stream the entries came from
-- ARGV[1] queue key prefix "ns:{q}:" (derived, same slot: {q}:job:<id>, {q}:done:<id>)
-- ARGV[2] group, ARGV[3] result TTL s, then triples (entry id, job id, result JSON)
-- Returns a string with one character per job: '1' stored, '0' the job was already
-- terminal or its record is gone (its entry is acked either way). A job is stored even if
-- another consumer took its entry over meanwhile: the work is done, and the other
-- delivery will see the terminal state and drop itself.
local prefix, group, ttl = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms()
local flags, ids = {}, {}
for i = 4, #ARGV, 3 do ids[#ids + 1] = ARGV[i] end
for i = 1, #ids, 500 do
  local chunk = {unpack(ids, i, math.min(i + 499, #ids))}
  redis.call('XACK', KEYS[1], group, unpack(chunk))
  redis.call('XDEL', KEYS[1], unpack(chunk))
end
for i = 4, #ARGV, 3 do
  local jid = ARGV[i + 1]
  local jkey = prefix .. 'job:' .. jid
  local state = redis.call('HGET', jkey, 'state')
  if not state or TERMINAL[state] then
    flags[#flags + 1] = '0'
  else
    redis.call('HSET', jkey, 'state', 'succeeded', 'result', ARGV[i + 2], 'end_ms', now)
    redis.call('HDEL', jkey, 'error')
    redis.call('EXPIRE', jkey, ttl)
    local latch = prefix .. 'done:' .. jid
    redis.call('RPUSH', latch, 1)
    redis.call('EXPIRE', latch, ttl)
    flags[#flags + 1] = '1'
  end
end
return table.concat(flags)
