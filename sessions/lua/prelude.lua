-- prelude: what every script shares, so a rule about clocks, keys,
-- devices or traces is written once. store.go puts in front of each
-- script the parts of this file it uses (blocks between blank lines: a
-- block that defines no helper goes to every script) and writes the
-- status names (ST.created, from status.go) in.
--
-- Every script is called with the same first arguments:
--   ARGV[1] base: the prefix and hash tag of the account's bucket
--   ARGV[2] the account (the callee's bare JID)
--   ARGV[3] now in unix ms, or '' to read Redis's clock
--   ARGV[4] how long a trace is kept, ms (0: no trace)
-- and builds the names of the account's keys from them (keys.go has the
-- scheme). KEYS[1] is always a key of the bucket, for routing.

-- One clock: Redis's (TIME), so that processes with skewed clocks agree on
-- every deadline. Tests pass their own.
local function clock(arg)
  if arg ~= nil and arg ~= '' then
    return tonumber(arg)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local BASE, ACCT = ARGV[1], ARGV[2]
local NOW = clock(ARGV[3])
local TRACE_TTL = tonumber(ARGV[4]) or 0

local function key(kind, rest)
  if rest then
    return BASE .. kind .. ':' .. ACCT .. '/' .. rest
  end
  return BASE .. kind .. ':' .. ACCT
end

-- trace appends events to a call's trace (a capped list that expires
-- TRACE_TTL after the call's first event). One command on the hot path:
-- the expiry is set when the list starts, the cap applied when it is
-- reached.
local function trace(ref, ...)
  if TRACE_TTL <= 0 then
    return
  end
  local k = key('tr', ref)
  local events = {...}
  for i = 1, #events do
    events[i] = NOW .. ' ' .. events[i]
  end
  local n = redis.call('RPUSH', k, unpack(events))
  if n == #events then
    redis.call('PEXPIRE', k, TRACE_TTL)
  elseif n > 64 then
    redis.call('LTRIM', k, -64, -1)
  end
end

-- Device records (record.go): arrays
--   {1, id, voip, token, bundle, environment, node, secret, registered, resource}
local R = {version = 1, id = 2, voip = 3, token = 4, bundle = 5, env = 6, node = 7, secret = 8, registered = 9, resource = 10}

-- devices returns the account's device records as stored in the field of
-- hash dkey, and the raw field; a field that cannot be read is empty (one
-- damaged record must not stop a call).
local function devices(dkey)
  local raw = redis.call('HGET', dkey, ACCT)
  if not raw then
    return {}, nil
  end
  local ok, list = pcall(cmsgpack.unpack, raw)
  if not ok or type(list) ~= 'table' then
    return {}, raw
  end
  return list, raw
end

-- usable reports whether d is a device record this version reads, and one
-- that has not aged out: each device expires on its own, device_ttl_ms
-- after its last registration (0: never).
local function usable(d, device_ttl_ms)
  if type(d) ~= 'table' or d[R.version] ~= 1 or type(d[R.id]) ~= 'string' or d[R.id] == '' then
    return false
  end
  local reg = tonumber(d[R.registered]) or 0
  return device_ttl_ms <= 0 or reg == 0 or reg * 1000 + device_ttl_ms > NOW
end

-- wake_kind is how a call wakes device d: 'voip' with a PushKit token,
-- 'alert' with only a regular token, nil with neither. Its Go twin for
-- the fail-open path is wakeKind.
local function wake_kind(d)
  if type(d[R.voip]) == 'string' and d[R.voip] ~= '' then
    return ST.voip
  elseif type(d[R.token]) == 'string' and d[R.token] ~= '' then
    return ST.alert
  end
  return nil
end

-- Wake marks, field "w:<device>" of the call: "<kind>:<state>:<attempt>",
-- state p (pending: handed to the attempt that may deliver it), d
-- (delivered) or x (given up). A process that took a wake pushes it while
-- it holds the lease, the timer "w\n<account>\n<ref>\n<device>"; when the
-- process dies, the lease comes due and another takes the wake over.
local function parse_mark(m)
  if not m then
    return nil
  end
  local kind, state, attempt = string.match(m, '^([^:]*):([^:]*):(.*)$')
  return kind, state, attempt
end

local function lease_member(ref, dev)
  return 'w\n' .. ACCT .. '\n' .. ref .. '\n' .. dev
end

-- done_timer removes a timer that has been acted on, with its claim count.
local function done_timer(member)
  redis.call('ZREM', BASE .. 't', member)
  redis.call('HDEL', BASE .. 'ta', member)
end

-- newest_call names the account's newest call (a digest: a caller's call
-- id may hold any character), or '' when it has had none for a while.
local function newest_call()
  local ref = redis.call('LINDEX', key('rc'), 0)
  if not ref then
    return ''
  end
  return redis.sha1hex(ref)
end

-- ringing_on_phones marks a call as ringing on the account's phones (it
-- woke a device): the per-callee limits count those calls, not the ones
-- that only reached clients that were online. ttl, when given, is known
-- to outlast every call's deadline.
local function ringing_on_phones(ref, deadline, ttl)
  local k = key('rw')
  redis.call('HSET', k, ref, deadline)
  if ttl then
    redis.call('PEXPIRE', k, ttl)
  else
    redis.call('PEXPIRE', k, math.max(redis.call('PTTL', k), tonumber(deadline) - NOW + 60000))
  end
end
