-- publish: a XEP-0357 publish for one device. It wakes the device for each
-- call that rings now; otherwise it is recorded (condition 3 of the waking
-- rule, for a propose that arrives later) and a message alert is held or
-- released.
--
-- KEYS: 1 devices  2 published  3 pending  4 lastcall, then pairs (call, woken)
--       for each call the account had ringing when the caller looked
-- ARGV: 1 now_ms  2 device id  3 ring_ms  4 wake (1/0)  5 hold_ms (0: no hold)
--       6 pending message json  7 lastcall as read with the calls ("" when absent)
-- Returns {'call', [i, kind, created, deadline, from, media, caller]...}: the publish belongs to a call
--         {'hold', 1|0}: message alert held (1 when this publish started the hold)
--         {'message', device_json}: send a message alert now
--         {'gone'}: the device is no longer registered
--         {'retry'}: a call started since the caller read the calls; nothing was changed
local now = tonumber(ARGV[1])
local dev = ARGV[2]
local ring = tonumber(ARGV[3])

if (redis.call('GET', KEYS[4]) or '') ~= ARGV[7] then
  return {ST.retry}
end

local raw = redis.call('HGET', KEYS[1], dev)
if not raw then
  return {ST.gone}
end
local d = decode_device(raw)
if not d then
  return {ST.gone}
end
local kind = wake_kind(d)

local out = {ST.call}
local ringing = false
for i = 5, #KEYS, 2 do
  local c = redis.call('HMGET', KEYS[i], 'state', 'deadline', 'created', 'from', 'media', 'caller')
  if c[1] == ST.ringing and now < tonumber(c[2]) then
    ringing = true
    if ARGV[4] == '1' and kind and redis.call('HEXISTS', KEYS[i + 1], dev) == 0 then
      redis.call('HSET', KEYS[i + 1], dev, kind)
      redis.call('PEXPIRE', KEYS[i + 1], redis.call('PTTL', KEYS[i]))
      out[#out + 1] = i
      out[#out + 1] = kind
      out[#out + 1] = c[3]
      out[#out + 1] = c[2]
      out[#out + 1] = c[4]
      out[#out + 1] = c[5]
      out[#out + 1] = c[6]
    end
  end
end
if ringing then
  -- The publish was about this call: it must not count for a later one.
  redis.call('HDEL', KEYS[2], dev)
  return out
end
-- No call rings: remember the publish for a propose that may follow
-- (condition 3 in the other order), and hold or send a message alert.
redis.call('HSET', KEYS[2], dev, now)
redis.call('PEXPIRE', KEYS[2], ring)
if tonumber(ARGV[5]) > 0 then
  local started = redis.call('HSETNX', KEYS[3], dev, ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ring)
  return {ST.hold, started}
end
return {ST.message, raw}
