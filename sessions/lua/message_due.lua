-- message_due: a held message alert is due. Only one caller takes it; it is
-- dropped when a call to the account was proposed after the publish (the
-- publish belonged to that call).
--
-- KEYS: 1 devices  2 pending  3 lastcall
-- ARGV: 1 device id
-- Returns {'message', device_json, pending_json} | {'call'} | {'none'}
local p = redis.call('HGET', KEYS[2], ARGV[1])
if not p then
  return {ST.none}
end
redis.call('HDEL', KEYS[2], ARGV[1])
local ok, m = pcall(cjson.decode, p)
local last = redis.call('GET', KEYS[3])
if ok and type(m) == 'table' then
  if type(m.lastcall) == 'string' then
    -- A call created since the publish was recorded changed lastcall (an
    -- expired lastcall means none was).
    if last and last ~= m.lastcall then
      return {ST.call}
    end
  elseif tonumber(m.at or 0) <= tonumber(last or '0') then
    return {ST.call} -- held by an older process: its clock is all there is
  end
end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return {ST.none}
end
return {ST.message, raw, p}
