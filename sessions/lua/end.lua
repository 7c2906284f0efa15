-- end: moves a ringing call to its final state once, and returns the
-- devices that were woken for it so each can be told how the call ended.
-- The call's timers go with it: its ring timeout and its wake leases.
--
-- KEYS: 1 the call  2 the account's devices hash
-- ARGV (after the prelude's four): 5 ref  6 new state  7 only when due (1: the ring timeout,
--   which does nothing before the deadline)  8 how it ended, for the trace
-- Returns {ended-now, created, deadline, from, media, caller, devices, [id, kind]...}
--         {ended, state} | {unknown} | {early, deadline}
local ref = ARGV[5]
local timer = 'c\n' .. ACCT .. '\n' .. ref
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HDEL', key('r'), ref)
  redis.call('HDEL', key('rw'), ref)
  done_timer(timer)
  return {ST.unknown}
end
if state ~= ST.ringing then
  done_timer(timer)
  return {ST.ended, state}
end
local call = redis.call('HMGET', KEYS[1], 'created', 'deadline', 'from', 'media', 'caller')
if ARGV[7] == '1' and NOW < tonumber(call[2]) then
  -- Claimed early (it was moved by hand, or clocks differ): back to the
  -- deadline.
  redis.call('ZADD', BASE .. 't', call[2], timer)
  return {ST.early, call[2]}
end
redis.call('HSET', KEYS[1], 'state', ARGV[6], 'ended', NOW)
redis.call('HDEL', key('r'), ref)
redis.call('HDEL', key('rw'), ref)
done_timer(timer)

local out = {ST.ended_now, call[1], call[2], call[3], call[4], call[5], redis.call('HGET', KEYS[2], ACCT) or ''}
local fields = redis.call('HGETALL', KEYS[1])
local woken = 0
for i = 1, #fields, 2 do
  local dev = string.match(fields[i], '^w:(.*)$')
  if dev then
    local kind = parse_mark(fields[i + 1])
    done_timer(lease_member(ref, dev))
    out[#out + 1] = dev
    out[#out + 1] = kind
    woken = woken + 1
  end
end
trace(ref, 'ended ' .. ARGV[6] .. ' ' .. ARGV[8] .. ' woken=' .. woken)
return out
