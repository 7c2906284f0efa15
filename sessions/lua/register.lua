-- register: adds or updates one device of an account. Re-registering a
-- device id replaces its tokens and keeps its node and secret.
--
-- KEYS: 1 devices
-- ARGV: 1 device id  2 device json (with a fresh node and secret)  3 max devices  4 ttl_ms
-- Returns {'ok', stored device json} | {'full'}
local old = redis.call('HGET', KEYS[1], ARGV[1])
local new = cjson.decode(ARGV[2])
if old then
  local o = decode_device(old)
  if o and o.node and o.secret then
    new.node = o.node
    new.secret = o.secret
  end
elseif redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return {ST.full}
end
local raw = cjson.encode(new)
redis.call('HSET', KEYS[1], ARGV[1], raw)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {ST.ok, raw}
