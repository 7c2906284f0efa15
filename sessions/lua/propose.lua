-- propose: one copy of a call's propose for the account. Creates the call
-- the first time it is seen (unless a limit refuses it), then decides
-- which devices to wake now and marks them, all in one atomic step: a
-- device returned here is handed to this attempt alone, whichever process
-- or copy ran it. The same attempt (go-redis retrying a script whose
-- answer was lost) gets the same wakes back.
--
-- KEYS: 1 the account's devices hash
-- ARGV (after the prelude's four):
--   5 caller  6 id  7 from  8 media  9 delay ms (0: none)  10 undeliverable (1/0)
--   11 wake_on_publish (1/0)  12 ring ms  13 call ttl ms  14 stale ms  15 age ms (since the stanza arrived)
--   16 attempt  17 lease ms  18 device ttl ms  19 publish window ms
--   20 max ringing per callee  21 max ringing per remote domain  22 wakes per caller and minute
--   23 the caller is remote (1/0)  24 source, for the trace  25 refuse ('' or a reason decided before)
--   26 stranger alert window ms  27 devices already pushed while Redis was away (fail open),
--   separated by newlines: marked delivered, not handed out again  28 one ringing call per caller (1/0)
-- Returns
--   {created|ringing, created, deadline, from, media, devices, available, [id, kind, why]...}
--   {refused, reason, devices or ''}   (devices: a stranger's first refused call in the window)
--   {stale} | {ended, state} | {late}
local caller, id = ARGV[5], ARGV[6]
local ring, ttl = tonumber(ARGV[12]), tonumber(ARGV[13])
local attempt, lease = ARGV[16], tonumber(ARGV[17])
local device_ttl, window = tonumber(ARGV[18]), tonumber(ARGV[19])
local ref = caller .. '/' .. id
local ckey = key('c', ref)
local status, created, deadline, from, media, undeliverable

-- refuse ends a new call before it rings: copies of it find it ended.
local function refuse(reason)
  redis.call('HSET', ckey, 'state', ST.refused, 'reason', reason, 'caller', caller, 'created', NOW)
  redis.call('PEXPIRE', ckey, ttl)
  trace(ref, 'refused ' .. reason)
  local devs = ''
  if reason == ST.stranger then
    -- A stranger's call wakes nothing; the user hears of it once per
    -- caller and window.
    if redis.call('SET', key('sa', caller), '1', 'NX', 'PX', tonumber(ARGV[26])) then
      devs = redis.call('HGET', KEYS[1], ACCT) or ''
    end
  end
  return {ST.refused, reason, devs}
end

-- limit tells why a new call may not ring, or nil: one ringing call per
-- caller and callee, a handful per callee and fewer per remote domain (of
-- the calls that woke a phone), a few wakes a minute per caller and
-- callee.
local function limit()
  local max_ringing, max_domain, per_minute = tonumber(ARGV[20]), tonumber(ARGV[21]), tonumber(ARGV[22])
  local rkey = key('rw')
  local ringing = redis.call('HGETALL', rkey)
  local live, same_domain = 0, 0
  local domain = string.match(caller, '@(.*)$') or caller
  for i = 1, #ringing, 2 do
    local other, other_deadline = ringing[i], tonumber(ringing[i + 1])
    if other_deadline <= NOW then
      redis.call('HDEL', rkey, other)
    else
      live = live + 1
      local other_caller = string.match(other, '^([^/]*)/')
      if other_caller == caller and ARGV[28] == '1' then
        return ST.pair_ringing
      end
      if ARGV[23] == '1' and (string.match(other_caller or '', '@(.*)$') or other_caller) == domain then
        same_domain = same_domain + 1
      end
    end
  end
  if max_ringing > 0 and live >= max_ringing then
    return ST.callee_busy
  end
  if ARGV[23] == '1' and max_domain > 0 and same_domain >= max_domain then
    return ST.domain_busy
  end
  if per_minute > 0 then
    -- GCRA: one wake every 60/per_minute s, bursts of per_minute.
    local rl = key('rl', caller)
    local interval = 60000 / per_minute
    local tat = math.max(tonumber(redis.call('GET', rl) or '0'), NOW)
    if tat - NOW > (per_minute - 1) * interval then
      return ST.pair_rate
    end
    redis.call('SET', rl, tat + interval, 'PX', math.ceil(tat + interval - NOW))
  end
  return nil
end

-- The call's hash, marks and all: one read. A new call is written at the
-- end (commit), with its wake marks, in one command per key.
local fields = redis.call('HGETALL', ckey)
local call = {}
for i = 1, #fields, 2 do call[fields[i]] = fields[i + 1] end
local fresh, timers, first_event = nil, {}, nil
-- The calls ringing on the account's phones are kept for the limits that
-- count them; with those off, nothing reads them.
local count_ringing = tonumber(ARGV[20]) > 0 or tonumber(ARGV[21]) > 0 or ARGV[28] == '1'

-- note traces one event, after the new call's 'created' when there is one.
local function note(event)
  if first_event then
    trace(ref, first_event, event)
  else
    trace(ref, event)
  end
end

-- commit writes what this copy decided: a new call with its marks, the
-- account's ringing and recent calls, the timers (ring timeout, leases)
-- in one ZADD.
local function commit(marks)
  if fresh then
    for i = 1, #marks do fresh[#fresh + 1] = marks[i] end
    redis.call('HSET', ckey, unpack(fresh))
    redis.call('PEXPIRE', ckey, ttl)
    -- Every call gets the same ttl, so the newest one outlives the others.
    local rkey, rckey = key('r'), key('rc')
    redis.call('HSET', rkey, ref, deadline)
    redis.call('PEXPIRE', rkey, ttl)
    -- The newest calls: publishes read eight, the trace command twenty;
    -- the head also tells a held message alert whether a call came since.
    if redis.call('LPUSH', rckey, ref) > 40 then
      redis.call('LTRIM', rckey, 0, 19) -- once in twenty calls
    end
    redis.call('PEXPIRE', rckey, math.max(ttl, TRACE_TTL))
  elseif #marks > 0 then
    redis.call('HSET', ckey, unpack(marks))
  end
  if #timers > 0 then
    redis.call('ZADD', BASE .. 't', unpack(timers))
  end
  if #marks > 0 and count_ringing then
    -- A new call's deadline is within ttl of now, like every other's.
    ringing_on_phones(ref, deadline, fresh and ttl)
  end
end

if not call.state then
  created = NOW - tonumber(ARGV[15])
  local delay = tonumber(ARGV[9])
  if delay > 0 and created - delay > tonumber(ARGV[14]) then
    trace(ref, 'seen ' .. ARGV[24] .. ' stale delay=' .. (created - delay))
    if TRACE_TTL > 0 then
      -- Calls that never rang are listed for the trace command apart.
      local tc = key('tc')
      redis.call('LREM', tc, 0, ref)
      redis.call('LPUSH', tc, ref)
      redis.call('LTRIM', tc, 0, 19)
      redis.call('PEXPIRE', tc, TRACE_TTL)
    end
    return {ST.stale}
  end
  if ARGV[25] ~= '' then
    return refuse(ARGV[25])
  end
  -- A call rung from memory while Redis was away rings already: limits
  -- are for new calls, and refusing it now would leave it never ended.
  if ARGV[27] == '' and (count_ringing or tonumber(ARGV[22]) > 0) then
    local why_not = limit()
    if why_not then
      return refuse(why_not)
    end
  end
  status, deadline = ST.created, created + ring
  from, media, undeliverable = ARGV[7], ARGV[8], ARGV[10] == '1'
  fresh = {'state', ST.ringing, 'caller', caller, 'from', from, 'media', media,
    'created', created, 'deadline', deadline, 'und', ARGV[10]}
  timers = {deadline, 'c\n' .. ACCT .. '\n' .. ref}
  if TRACE_TTL > 0 then
    first_event = 'created from=' .. from .. ' media=' .. media .. ' age=' .. ARGV[15]
  end
elseif call.state ~= ST.ringing then
  trace(ref, 'seen ' .. ARGV[24] .. ' ended=' .. call.state)
  return {ST.ended, call.state}
else
  status, created, deadline = ST.ringing, tonumber(call.created), tonumber(call.deadline)
  from, media, undeliverable = call.from, call.media, call.und == '1'
  if ARGV[10] == '1' and not undeliverable then
    redis.call('HSET', ckey, 'und', '1')
    undeliverable = true
  end
end
if NOW >= deadline then
  commit({})
  note('seen ' .. ARGV[24] .. ' late')
  return {ST.late}
end

local list, raw = devices(KEYS[1])
local available, avail_list = {}, {}
local p = redis.call('HGETALL', key('p'))
for i = 1, #p, 2 do
  available[p[i]] = true
  avail_list[#avail_list + 1] = p[i]
end
local out = {status, created, deadline, from, media, raw or '', table.concat(avail_list, '\n')}
if #list == 0 then
  commit({})
  note('seen ' .. ARGV[24] .. ' no devices')
  return out
end

local published = {}
if ARGV[11] == '1' then
  local pub = redis.call('HGETALL', key('pub'))
  for i = 1, #pub, 2 do published[pub[i]] = tonumber(pub[i + 1]) end
end
local marks, consumed, seen = {}, {}, {}
local pushed = {}
for dev in string.gmatch(ARGV[27], '[^\n]+') do pushed[dev] = true end
for _, d in ipairs(list) do
  if usable(d, device_ttl) then
    local dev = d[R.id]
    local kind = wake_kind(d)
    local mark = call['w:' .. dev]
    local why
    if mark then
      local mkind, state, att = parse_mark(mark)
      if state == 'p' and att == attempt then
        -- The same attempt again: its answer was lost on the way.
        why, kind = ST.again, mkind
      else
        seen[#seen + 1] = dev .. '=woken'
      end
    elseif not kind then
      seen[#seen + 1] = dev .. '=no_token'
    elseif pushed[dev] then
      marks[#marks + 1] = 'w:' .. dev
      marks[#marks + 1] = kind .. ':d:' .. attempt
      seen[#seen + 1] = dev .. '=' .. kind .. ':fail_open'
    else
      local resource = d[R.resource]
      if undeliverable then
        -- condition 2: the server said it could not deliver live
        why = ST.undeliverable
      elseif type(resource) ~= 'string' or resource == '' or not available[resource] then
        -- condition 1: the device's resource is not available (or unknown)
        why = ST.presence
      elseif published[dev] and published[dev] >= created - window then
        -- condition 3: a XEP-0357 publish for the device came with the call
        why = ST.publish
      else
        seen[#seen + 1] = dev .. '=live'
      end
      if why then
        marks[#marks + 1] = 'w:' .. dev
        marks[#marks + 1] = kind .. ':p:' .. attempt
        timers[#timers + 1] = NOW + lease
        timers[#timers + 1] = lease_member(ref, dev)
        if published[dev] then
          -- a publish is consumed by the call it woke the device for
          consumed[#consumed + 1] = dev
        end
      end
    end
    if why then
      out[#out + 1] = dev
      out[#out + 1] = kind
      out[#out + 1] = why
      seen[#seen + 1] = dev .. '=' .. kind .. ':' .. why
    end
  end
end
commit(marks)
if #consumed > 0 then
  redis.call('HDEL', key('pub'), unpack(consumed))
end
note('seen ' .. ARGV[24] .. ' ' .. table.concat(seen, ' '))
return out
