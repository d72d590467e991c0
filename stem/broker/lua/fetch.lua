-- fetch.lua: deliver up to N jobs of one queue to a consumer, highest priority first.
--
-- KEYS[1..n]  {q}:p9 .. {q}:p0   ready streams in read order (missing ones are skipped)
-- ARGV[1]     queue key prefix "ns:{q}:" (job records {q}:job:<id> and the counters
--             hash {q}:stats are derived from it and share the slot)
-- ARGV[2]     consumer group, ARGV[3] consumer name, ARGV[4] how many at most
-- Effects     XREADGROUP moves entries into the consumer's pending list; each delivered
--             job's record gets state=started, start_ms, deliveries+1. An entry whose job
--             already reached a terminal state (a duplicate after a reclaim race) is
--             acked, deleted and counted in stats.duplicates instead of delivered.
-- Returns     {1, d1, d2, ...} with d = {stream index (1-based), entry id, job id or false,
--               envelope or false, attempt, deliveries, raw fields (only when no record)}
--             or, when nothing was ready, {0, last-id-per-stream...} so the caller can
--             block with XREAD from exactly there without missing a new entry.
local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local want = tonumber(ARGV[4])
local out = {1}
local terminal = {succeeded = true, failed = true, dead = true}
for i = 1, #KEYS do
  if want <= 0 then break end
  local stream = KEYS[i]
  if redis.call('EXISTS', stream) == 1 then
    local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want,
      'STREAMS', stream, '>')
    if reply then
      for _, entry in ipairs(reply[1][2]) do
        local eid, fields = entry[1], entry[2]
        local jid = false
        for k = 1, #fields, 2 do
          if fields[k] == 'id' then jid = fields[k + 1] end
        end
        local rec = false
        if jid then
          rec = redis.call('HMGET', prefix .. 'job:' .. jid, 'env', 'state', 'attempt')
          if not rec[1] then rec = false end
        end
        if rec and terminal[rec[2]] then
          redis.call('XACK', stream, group, eid)
          redis.call('XDEL', stream, eid)
          redis.call('HINCRBY', prefix .. 'stats', 'duplicates', 1)
        elseif rec then
          local jkey = prefix .. 'job:' .. jid
          redis.call('HSET', jkey, 'state', 'started', 'start_ms', now_ms, 'worker', consumer)
          local deliveries = redis.call('HINCRBY', jkey, 'deliveries', 1)
          out[#out + 1] = {i, eid, jid, rec[1], tonumber(rec[3]) or 0, deliveries, false}
          want = want - 1
        else
          out[#out + 1] = {i, eid, jid, false, 0, 1, fields}
          want = want - 1
        end
      end
    end
  end
end
if #out > 1 then return out end
local lasts = {0}
for i = 1, #KEYS do
  local last = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
  if last[1] then lasts[#lasts + 1] = last[1][1] else lasts[#lasts + 1] = '0-0' end
end
return lasts
