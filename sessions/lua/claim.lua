-- claim: takes the bucket's timers that are due. A claimed timer is moved
-- claim ms ahead, so that one process fires it now and, should that
-- process die before the timer's own script removes it, another fires it
-- then. A timer claimed too often without being done with is parked
-- instead: it can never keep the others waiting.
--
-- KEYS: 1 the bucket's timers
-- ARGV (after the prelude's four, with '' for the account): 5 limit  6 claim ms  7 max claims
-- Returns {[member, claims]...}, with claims = -1 for a timer parked now
local t, attempts, parked = KEYS[1], BASE .. 'ta', BASE .. 'tp'
local due = redis.call('ZRANGEBYSCORE', t, '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[5]))
local out = {}
for _, m in ipairs(due) do
  local n = redis.call('HINCRBY', attempts, m, 1)
  if n > tonumber(ARGV[7]) then
    redis.call('ZREM', t, m)
    redis.call('HDEL', attempts, m)
    redis.call('ZADD', parked, NOW, m)
    redis.call('PEXPIRE', parked, 7 * 86400000)
    out[#out + 1] = m
    out[#out + 1] = -1
  else
    redis.call('ZADD', t, NOW + tonumber(ARGV[6]), m)
    out[#out + 1] = m
    out[#out + 1] = n
  end
end
if #due > 0 then
  redis.call('PEXPIRE', attempts, 86400000)
end
return out
