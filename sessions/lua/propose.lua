-- propose: a call signal "propose" for one account. Creates the call the
-- first time it is seen, then decides which devices to wake now and marks
-- them woken, all in one atomic step: the device ids this script returns
-- are pushed exactly once, whichever process or copy ran it.
--
-- KEYS: 1 call  2 woken  3 ringing  4 devices  5 presence  6 published  7 lastcall
-- ARGV: 1 now_ms  2 ring_ms  3 ttl_ms  4 stale_ms  5 delay_ms (0: none)
--       6 undeliverable (1/0)  7 wake_on_publish (1/0)  8 ref  9 from  10 media  11 caller
-- Returns {status, created, deadline, from, media, ndevices, [id, device_json] x ndevices, [id, kind, why]...}
-- (every device is returned so the process can cache them and still push if Redis fails later)
-- status: created | ringing (a duplicate, maybe waking more devices) | stale | ended (+ state) | late
--
-- This runs once per call: it keeps to one command per key where it can.
local now = tonumber(ARGV[1])
local ring = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local status, created, deadline, from, media, undeliverable

local call = redis.call('HMGET', KEYS[1], 'state', 'created', 'deadline', 'und', 'from', 'media')
if not call[1] then
  local delay = tonumber(ARGV[5])
  if delay > 0 and now - delay > tonumber(ARGV[4]) then
    return {ST.stale}
  end
  status, created, deadline = ST.created, now, now + ring
  from, media, undeliverable = ARGV[9], ARGV[10], ARGV[6] == '1'
  redis.call('HSET', KEYS[1], 'state', ST.ringing, 'caller', ARGV[11], 'from', from,
    'media', media, 'created', created, 'deadline', deadline, 'und', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ttl)
  -- Every call gets the same ttl, so the newest one outlives the others.
  redis.call('HSET', KEYS[3], ARGV[8], deadline)
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('SET', KEYS[7], now, 'PX', ttl)
elseif call[1] ~= ST.ringing then
  return {ST.ended, call[1]}
else
  status, created, deadline = ST.ringing, tonumber(call[2]), tonumber(call[3])
  from, media, undeliverable = call[5], call[6], call[4] == '1'
  if ARGV[6] == '1' and not undeliverable then
    redis.call('HSET', KEYS[1], 'und', '1')
    undeliverable = true
  end
end
if now >= deadline then
  return {ST.late}
end

local devices = redis.call('HGETALL', KEYS[4])
local out = {status, created, deadline, from, media, #devices / 2}
for i = 1, #devices do
  out[#out + 1] = devices[i]
end
if #devices == 0 then
  return out
end

-- What is known of the account, read once.
local woken = {}
if status ~= ST.created then
  local w = redis.call('HGETALL', KEYS[2])
  for i = 1, #w, 2 do woken[w[i]] = true end
end
local available = {}
local p = redis.call('HGETALL', KEYS[5])
for i = 1, #p, 2 do available[p[i]] = true end
local published = {}
if ARGV[7] == '1' then
  local pub = redis.call('HGETALL', KEYS[6])
  for i = 1, #pub, 2 do published[pub[i]] = tonumber(pub[i + 1]) end
end

local marks, consumed = {}, {}
for i = 1, #devices, 2 do
  local id = devices[i]
  local d = not woken[id] and decode_device(devices[i + 1])
  if d then
    local kind = wake_kind(d)
    local why
    if kind then
      local resource = d.resource
      if undeliverable then
        -- condition 2: the server said it could not deliver live
        why = ST.undeliverable
      elseif type(resource) ~= 'string' or resource == '' or not available[resource] then
        -- condition 1: the device's resource is not available (or unknown)
        why = ST.presence
      elseif published[id] and published[id] >= created - ring then
        -- condition 3: a XEP-0357 publish for the device within ring_timeout
        why = ST.publish
      end
    end
    if why then
      marks[#marks + 1] = id
      marks[#marks + 1] = kind
      out[#out + 1] = id
      out[#out + 1] = kind
      out[#out + 1] = why
      if published[id] then
        -- a publish is consumed by the call it woke the device for
        consumed[#consumed + 1] = id
      end
    end
  end
end
if #marks > 0 then
  redis.call('HSET', KEYS[2], unpack(marks))
  if status == ST.created then
    redis.call('PEXPIRE', KEYS[2], ttl)
  else
    redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1]))
  end
end
if #consumed > 0 then
  redis.call('HDEL', KEYS[6], unpack(consumed))
end
return out
