-- message_due: a held message alert is due. Only one caller takes it; it is
-- dropped when a call to the account was proposed after the publish (the
-- publish belonged to that call).
--
-- KEYS: 1 devices  2 pending  3 lastcall
-- ARGV: 1 device id
-- Returns {'message', device_json, pending_json} | {'call'} | {'none'}
local p = redis.call('HGET', KEYS[2], ARGV[1])
if not p then
  return {'none'}
end
redis.call('HDEL', KEYS[2], ARGV[1])
local ok, m = pcall(cjson.decode, p)
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if ok and type(m) == 'table' and tonumber(m.at or 0) <= last then
  return {'call'}
end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return {'none'}
end
return {'message', raw, p}
