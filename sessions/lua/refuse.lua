-- refuse: a call its caller's (or domain's) budget did not allow, ended
-- before anything was pushed: its wakes, leases and ring timeout go.
--
-- KEYS: 1 the call
-- ARGV (after the prelude's four): 5 ref  6 reason
-- Returns {1} | {0} (the call was no longer ringing)
local ref = ARGV[5]
if redis.call('HGET', KEYS[1], 'state') ~= ST.ringing then
  return {0}
end
redis.call('HSET', KEYS[1], 'state', ST.refused, 'reason', ARGV[6])
redis.call('HDEL', key('r'), ref)
redis.call('HDEL', key('rw'), ref)
done_timer('c\n' .. ACCT .. '\n' .. ref)
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local dev = string.match(fields[i], '^w:(.*)$')
  if dev then
    done_timer(lease_member(ref, dev))
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
trace(ref, 'refused ' .. ARGV[6])
return {1}
