-- remove: removes a device, or one dead token of it. A device left with no
-- token is removed.
--
-- KEYS: 1 devices
-- ARGV: 1 device id  2 token ('' removes the whole device)
--       3 when APNs found the token invalid, RFC 3339 UTC ('' for unknown):
--         a device that registered after it keeps the token
-- Returns {'removed', node} | {'updated'} | {'kept'} | {'none'}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return {ST.none}
end
local d = decode_device(raw)
if not d then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {ST.removed, ''}
end
if ARGV[2] ~= '' then
  -- Both are RFC 3339 UTC to the second, so they compare as strings.
  if ARGV[3] ~= '' and type(d.registered) == 'string' and d.registered > ARGV[3] then
    return {ST.kept}
  end
  local changed = false
  if d.voip_token == ARGV[2] then d.voip_token = nil; changed = true end
  if d.token == ARGV[2] then d.token = nil; changed = true end
  if not changed then
    return {ST.none}
  end
  if wake_kind(d) then
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(d))
    return {ST.updated}
  end
end
redis.call('HDEL', KEYS[1], ARGV[1])
return {ST.removed, d.node or ''}
