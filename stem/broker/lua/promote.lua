-- promote.lua: move delayed jobs whose time has come onto their ready streams.
-- Time comes from the server (TIME), so producers' and workers' clocks do not matter.
--
-- KEYS[1] {q}:delayed  sorted set of job ids scored by ready-at epoch ms
-- ARGV[1] queue key prefix "ns:{q}:" (derived, same slot: {q}:job:<id>, {q}:p<prio>)
-- ARGV[2] group, ARGV[3] how many at most
-- Returns {promoted count, score of the next delayed job or -1, server now ms}.
-- A delayed id whose record expired is dropped from the set (nothing left to run).
local prefix, group = ARGV[1], ARGV[2]
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, jid in ipairs(due) do
  redis.call('ZREM', KEYS[1], jid)
  local jkey = prefix .. 'job:' .. jid
  local rec = redis.call('HMGET', jkey, 'prio', 'state')
  if rec[1] and not TERMINAL[rec[2]] then
    local stream = prefix .. 'p' .. rec[1]
    ensure_group(stream, group)
    redis.call('XADD', stream, '*', 'id', jid)
    if rec[2] == 'scheduled' then redis.call('HSET', jkey, 'state', 'queued') end
    n = n + 1
  end
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {n, nxt[2] or -1, now}
