-- message_due: a held message alert is due. Only one caller takes it; it
-- is dropped when a call to the account was created after the publish
-- (the publish belonged to that call).
--
-- KEYS: 1 the account's devices hash
-- ARGV (after the prelude's four): 5 device id  6 device ttl ms
-- Returns {message, device, held json} | {call} | {none}
local dev = ARGV[5]
done_timer('m\n' .. ACCT .. '\n' .. dev)
local hkey = key('held')
local held = redis.call('HGET', hkey, dev)
if not held then
  return {ST.none}
end
redis.call('HDEL', hkey, dev)
local last, json = string.match(held, '^([^\n]*)\n(.*)$')
-- An expired list means no call since (it outlives every call).
local newest = newest_call()
if newest ~= '' and newest ~= last then
  return {ST.call}
end
for _, rec in ipairs(devices(KEYS[1])) do
  if usable(rec, tonumber(ARGV[6])) and rec[R.id] == dev then
    return {ST.message, cmsgpack.pack(rec), json}
  end
end
return {ST.none}
