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
local now = tonumber(ARGV[1])
local ring = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local status = 'ringing'

local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  local delay = tonumber(ARGV[5])
  if delay > 0 and now - delay > tonumber(ARGV[4]) then
    return {'stale'}
  end
  local deadline = now + ring
  redis.call('HSET', KEYS[1], 'state', 'ringing', 'caller', ARGV[11], 'from', ARGV[9],
    'media', ARGV[10], 'created', now, 'deadline', deadline, 'und', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('HSET', KEYS[3], ARGV[8], deadline)
  if redis.call('PTTL', KEYS[3]) < ttl then
    redis.call('PEXPIRE', KEYS[3], ttl)
  end
  redis.call('SET', KEYS[7], now, 'PX', ttl)
  status = 'created'
elseif state ~= 'ringing' then
  return {'ended', state}
elseif ARGV[6] == '1' then
  redis.call('HSET', KEYS[1], 'und', '1')
end

local call = redis.call('HMGET', KEYS[1], 'created', 'deadline', 'und', 'from', 'media')
local created = tonumber(call[1])
local deadline = tonumber(call[2])
if now >= deadline then
  return {'late'}
end
local devices = redis.call('HGETALL', KEYS[4])
local out = {status, call[1], call[2], call[4], call[5], #devices / 2}
for i = 1, #devices do
  out[#out + 1] = devices[i]
end
local base = #out

local undeliverable = call[3] == '1'
local wake_on_publish = ARGV[7] == '1'
for i = 1, #devices, 2 do
  local id, raw = devices[i], devices[i + 1]
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    local ok, d = pcall(cjson.decode, raw)
    if ok and type(d) == 'table' then
      local kind
      if type(d.voip_token) == 'string' and d.voip_token ~= '' then
        kind = 'voip'
      elseif type(d.token) == 'string' and d.token ~= '' then
        kind = 'alert'
      end
      if kind then
        -- why the device is woken, if it is
        local why
        -- condition 2: the server said it could not deliver live
        if undeliverable then
          why = 'undeliverable'
        end
        -- condition 1: the device's resource is not available (or unknown)
        if not why then
          local resource = d.resource
          if type(resource) ~= 'string' or resource == '' or redis.call('HEXISTS', KEYS[5], resource) == 0 then
            why = 'presence'
          end
        end
        -- condition 3: a XEP-0357 publish for the device within ring_timeout
        if not why and wake_on_publish then
          local p = tonumber(redis.call('HGET', KEYS[6], id) or '0')
          if p > 0 and p >= created - ring then
            why = 'publish'
          end
        end
        if why then
          redis.call('HSET', KEYS[2], id, kind)
          -- a publish is consumed by the call it woke the device for
          redis.call('HDEL', KEYS[6], id)
          out[#out + 1] = id
          out[#out + 1] = kind
          out[#out + 1] = why
        end
      end
    end
  end
end
if #out > base then
  redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1]))
end
return out
