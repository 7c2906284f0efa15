-- ringing: a <ringing/> from one of the callee's resources. Returns how
-- long after the call's first delivered push it came, and the app of the
-- device on that resource (for the histogram), once per call.
--
-- KEYS: 1 the call  2 the account's devices hash
-- ARGV (after the prelude's four): 5 ref  6 the resource that rings  7 device ttl ms
-- Returns {ms since the push, bundle id} | {-1}: no push was delivered, or already counted
local c = redis.call('HMGET', KEYS[1], 'pushed', 'rang')
trace(ARGV[5], 'ringing from ' .. ARGV[6])
if not c[1] or c[2] then
  return {-1}
end
redis.call('HSET', KEYS[1], 'rang', NOW)
local bundle = ''
for _, d in ipairs(devices(KEYS[2])) do
  if usable(d, tonumber(ARGV[7])) and d[R.resource] == ARGV[6] then
    bundle = d[R.bundle]
  end
end
return {NOW - tonumber(c[1]), bundle}
