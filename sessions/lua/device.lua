-- device: the reading of device records that every script shares. store.go
-- puts this file in front of each script, so a rule about devices is
-- written once (its Go twin for the fail-open path is wakeKind).

-- decode_device returns the device record raw holds, or nil when raw is not
-- one (a record damaged by hand must not stop a call).
local function decode_device(raw)
  local ok, d = pcall(cjson.decode, raw)
  if ok and type(d) == 'table' then
    return d
  end
  return nil
end

-- wake_kind is how a call wakes device d: 'voip' with a PushKit token,
-- 'alert' with only a regular token, nil with neither.
local function wake_kind(d)
  if type(d.voip_token) == 'string' and d.voip_token ~= '' then
    return ST.voip
  elseif type(d.token) == 'string' and d.token ~= '' then
    return ST.alert
  end
  return nil
end

