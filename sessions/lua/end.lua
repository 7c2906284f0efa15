-- end: moves a ringing call to its final state once, and returns the devices
-- that were woken for it so each can be told how the call ended.
--
-- KEYS: 1 call  2 woken  3 ringing  4 devices
-- ARGV: 1 now_ms  2 new state  3 ref  4 resource to leave out ('' for none)
--       5 only when due (1: the ring timeout; does nothing before the deadline)
-- Returns {status, created, deadline, from, media, caller, [id, kind, device_json]...}
-- status: ended-now | ended (+ state) | unknown | early
local now = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HDEL', KEYS[3], ARGV[3])
  return {ST.unknown}
end
if state ~= ST.ringing then
  return {ST.ended, state}
end
local call = redis.call('HMGET', KEYS[1], 'created', 'deadline', 'from', 'media', 'caller')
if ARGV[5] == '1' and now < tonumber(call[2]) then
  return {ST.early, call[2]}
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'ended', now)
redis.call('HDEL', KEYS[3], ARGV[3])

local out = {ST.ended_now, call[1], call[2], call[3], call[4], call[5]}
local woken = redis.call('HGETALL', KEYS[2])
for i = 1, #woken, 2 do
  local id, kind = woken[i], woken[i + 1]
  local raw = redis.call('HGET', KEYS[4], id)
  if raw then
    local d = decode_device(raw)
    if d and (ARGV[4] == '' or d.resource ~= ARGV[4]) then
      out[#out + 1] = id
      out[#out + 1] = kind
      out[#out + 1] = raw
    end
  end
end
return out
