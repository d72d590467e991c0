-- renew.lua: renew the leases of every job a consumer holds in one queue, in place.
-- XCLAIM ... JUSTID to the same consumer resets the entry's idle time without counting a
-- delivery, so the reclaimer (min-idle = lease) leaves the job alone while this runs.
--
-- KEYS[1..n] {q}:p<prio> the ready streams that hold entries of this consumer
-- ARGV[1] group, ARGV[2] consumer, then per stream: a count c followed by c entry ids
-- Touches only KEYS (XPENDING, XCLAIM on their consumer group).
-- Returns {taken, gone} for the entry ids that are no longer pending for this consumer:
-- taken = pending under another consumer; gone = pending for no one (acked by a settle,
-- a hand-back or the reclaimer). The caller tells its own settles from lost leases.
local function claim(stream, group, consumer, ids)
  local args = {'XCLAIM', stream, group, consumer, 0}
  for _, id in ipairs(ids) do args[#args + 1] = id end
  args[#args + 1] = 'JUSTID'
  redis.call(unpack(args))
end

local group, consumer = ARGV[1], ARGV[2]
local taken, gone = {}, {}
local a = 3
for i = 1, #KEYS do
  local c = tonumber(ARGV[a])
  a = a + 1
  local owned = {}
  local pending = redis.call('XPENDING', KEYS[i], group, '-', '+', c + 1000, consumer)
  for _, p in ipairs(pending) do owned[p[1]] = true end
  local mine = {}
  for j = 1, c do
    local eid = ARGV[a]
    a = a + 1
    if owned[eid] then
      mine[#mine + 1] = eid
    elseif #redis.call('XPENDING', KEYS[i], group, eid, eid, 1) > 0 then
      taken[#taken + 1] = eid
    else
      gone[#gone + 1] = eid
    end
    if #mine == 500 then
      claim(KEYS[i], group, consumer, mine)
      mine = {}
    end
  end
  if #mine > 0 then claim(KEYS[i], group, consumer, mine) end
end
return {taken, gone}
