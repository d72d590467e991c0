-- complete.lua: settle a job that succeeded: store the result, ack and delete the entry,
-- wake waiters. Atomic, so a result is never stored without the ack or the other way round.
--
-- KEYS[1] {q}:p<prio>  the ready stream the entry came from
-- KEYS[2] {q}:job:<id> the job record
-- KEYS[3] {q}:done:<id> the done latch (waiters BLMOVE on it)
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] result JSON, ARGV[4] result TTL s
-- Returns 1 when stored; 0 when the job was already terminal or its record is gone (the
-- entry is acked either way). The job is stored even if another consumer took the entry
-- over meanwhile: the work is done, and the other delivery will see the terminal state.
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local state = redis.call('HGET', KEYS[2], 'state')
if not state or TERMINAL[state] then return 0 end
redis.call('HSET', KEYS[2], 'state', 'succeeded', 'result', ARGV[3], 'end_ms', now_ms())
redis.call('HDEL', KEYS[2], 'error')
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('RPUSH', KEYS[3], 1)
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
