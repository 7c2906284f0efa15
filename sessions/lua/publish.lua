-- publish: a XEP-0357 publish for one device, named by its node. It belongs
-- to each call that rings and started within the publish window (only such
-- a call can have caused it), and wakes the device for those; and to a call
-- that started less than the publish hold ago and has ended already (a
-- server may publish for a propose a moment late). A publish that wakes
-- nothing is recorded (condition 3 of the waking rule, for a propose that
-- follows); one that belongs to no call also holds or releases a message
-- alert. Only the newest calls are looked at: the cost
-- of a publish does not grow with the calls ringing.
--
-- KEYS: 1 the account's devices hash
-- ARGV (after the prelude's four): 5 the node's random part  6 sha1 of the secret presented
--   7 wake (1/0)  8 hold ms (0: no hold)  9 the held alert (json)  10 ring ms  11 window ms
--   12 attempt  13 lease ms  14 device ttl ms  15 the configured publish hold ms
-- Returns {call, device, [ref, kind, created, deadline, from, media]...}: the publish belongs to calls
--         {hold, 1|0}: a message alert is held (1 when this publish started the hold)
--         {message, device}: send a message alert now
--         {gone} | {forbidden}
local list = devices(KEYS[1])
local d
for _, rec in ipairs(list) do
  if usable(rec, tonumber(ARGV[14])) and rec[R.node] == ARGV[5] then
    d = rec
    break
  end
end
if not d then
  return {ST.gone}
end
-- Hashes compared, not secrets: the time this takes tells nothing of the
-- secret.
if redis.sha1hex(d[R.secret]) ~= ARGV[6] then
  return {ST.forbidden}
end
local dev, kind = d[R.id], wake_kind(d)
local record = cmsgpack.pack(d)
local window, attempt = tonumber(ARGV[11]), ARGV[12]
local lag = tonumber(ARGV[15])

local out = {ST.call, record}
local belongs = false
for _, ref in ipairs(redis.call('LRANGE', key('rc'), 0, 7)) do
  local ckey = key('c', ref)
  local c = redis.call('HMGET', ckey, 'state', 'deadline', 'created', 'from', 'media')
  if c[1] == ST.ringing and NOW < tonumber(c[2]) and tonumber(c[3]) >= NOW - window then
    belongs = true
    if ARGV[7] == '1' and kind and redis.call('HEXISTS', ckey, 'w:' .. dev) == 0 then
      redis.call('HSET', ckey, 'w:' .. dev, kind .. ':p:' .. attempt)
      redis.call('ZADD', BASE .. 't', NOW + tonumber(ARGV[13]), lease_member(ref, dev))
      ringing_on_phones(ref, c[2])
      trace(ref, 'seen publish ' .. dev .. '=' .. kind .. ':' .. ST.publish)
      out[#out + 1] = ref
      out[#out + 1] = kind
      out[#out + 1] = c[3]
      out[#out + 1] = c[2]
      out[#out + 1] = c[4]
      out[#out + 1] = c[5]
    else
      trace(ref, 'seen publish ' .. dev .. '=' .. ((ARGV[7] ~= '1' and 'wake_off') or (not kind and 'no_token') or 'woken'))
    end
  elseif c[1] and c[1] ~= ST.ringing and tonumber(c[3]) >= NOW - lag then
    -- Ended as soon as it started (answered elsewhere, retracted, a
    -- tie-break): its propose's publish may come only now. Prosody sends
    -- the publishes for a hibernated session's queue a second late.
    belongs = true
    trace(ref, 'seen publish ' .. dev .. '=ended')
  end
end
local pkey = key('pub')
if #out > 2 then
  -- The publish woke the device for these calls: it must not count for a
  -- later one.
  redis.call('HDEL', pkey, dev)
  return out
end
-- It woke nothing: remember it for a propose that may follow (condition 3
-- in the other order). That holds too when it matched a call that ended a
-- moment ago: a caller who hangs up and calls again at once has the new
-- call's publish overtake its propose, and the old call must not swallow it.
redis.call('HSET', pkey, dev, NOW)
redis.call('PEXPIRE', pkey, tonumber(ARGV[10]))
if belongs then
  -- About a call, not a message: no alert.
  return out
end
-- Hold or send a message alert.
local hold = tonumber(ARGV[8])
if hold > 0 then
  local hkey = key('held')
  -- The held alert remembers the account's newest call: a call created
  -- before it is due claims it (message_due.lua), in Redis's order.
  local started = redis.call('HSETNX', hkey, dev, newest_call() .. '\n' .. ARGV[9])
  redis.call('PEXPIRE', hkey, math.max(tonumber(ARGV[10]), hold * 2))
  if started == 1 then
    redis.call('ZADD', BASE .. 't', NOW + hold, 'm\n' .. ACCT .. '\n' .. dev)
  end
  return {ST.hold, started}
end
return {ST.message, record}
