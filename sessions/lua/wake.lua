-- wake: the life of one wake after propose or publish handed it out,
-- until its push settles it (settle.lua).
--
-- KEYS: 1 the call  2 the account's devices hash
-- ARGV (after the prelude's four): 5 op  6 ref  7 device id  8 attempt  9 lease ms
--   10 text for the trace  11 the new attempt (takeover)  12 device ttl ms
-- ops:
--   wanted   before a push that waited (a retry, a backlog): the call still rings and
--            this attempt still holds the wake; renews its lease. {1} | {0, why}
--   takeover the wake's lease came due: the attempt that held it is gone (its process
--            died). A wake still pending on a ringing call is handed to a new attempt.
--            {1, kind, created, deadline, from, media, caller, device} | {0, why}
--   retry    the push service did not take the push (its queue is full): the lease comes
--            due now, so the next timer poll takes the wake over. {1} | {0}
local op, ref, dev, attempt = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local lease = tonumber(ARGV[9]) or 0
local member = lease_member(ref, dev)
local field = 'w:' .. dev

local c = redis.call('HMGET', KEYS[1], 'state', 'deadline', field)
local kind, state, att = parse_mark(c[3])
local ringing = c[1] == ST.ringing and NOW < tonumber(c[2] or '0')

if op == 'retry' then
  if state ~= 'p' or att ~= attempt then
    return {0}
  end
  redis.call('ZADD', BASE .. 't', NOW, member)
  trace(ref, 'push not queued ' .. dev .. ': taken over at the next poll')
  return {1}
end

if op == 'wanted' then
  if not ringing then
    return {0, c[1] or ST.unknown}
  end
  if state ~= 'p' or att ~= attempt then
    return {0, ST.taken}
  end
  redis.call('ZADD', BASE .. 't', NOW + lease, member)
  return {1}
end

-- takeover
if not ringing or state ~= 'p' then
  done_timer(member)
  return {0, c[1] or ST.unknown}
end
local d
for _, rec in ipairs(devices(KEYS[2])) do
  if usable(rec, tonumber(ARGV[12])) and rec[R.id] == dev then
    d = rec
    break
  end
end
if not d or not wake_kind(d) then
  redis.call('HSET', KEYS[1], field, kind .. ':x:' .. att)
  done_timer(member)
  return {0, ST.gone}
end
local new = ARGV[11]
redis.call('HSET', KEYS[1], field, kind .. ':p:' .. new)
redis.call('ZADD', BASE .. 't', NOW + lease, member)
trace(ref, 'takeover ' .. dev .. ' from ' .. att)
local call = redis.call('HMGET', KEYS[1], 'created', 'deadline', 'from', 'media', 'caller')
return {1, kind, call[1], call[2], call[3], call[4], call[5], cmsgpack.pack(d)}
