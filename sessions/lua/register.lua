-- register: adds or updates one device of an account. Re-registering a
-- device id replaces its tokens and resource and keeps its node and
-- secret. Devices that aged out (device ttl after their last
-- registration) are dropped on the way, and do not count against the
-- limit.
--
-- KEYS: 1 the account's devices hash
-- ARGV (after the prelude's four): 5 the device record (msgpack, with a fresh node and
--   secret; its registration time is set here)  6 max devices  7 device ttl ms
-- Returns {ok, stored record, [token removed from an older record]...} | {full}
local new = cmsgpack.unpack(ARGV[5])
local ttl = tonumber(ARGV[7])
new[R.registered] = math.floor(NOW / 1000)
local list = devices(KEYS[1])
local kept, old = {}, nil
for _, d in ipairs(list) do
  if usable(d, ttl) then
    if d[R.id] == new[R.id] then
      old = d
    else
      kept[#kept + 1] = d
    end
  end
end
if old then
  if old[R.node] ~= '' and old[R.secret] ~= '' then
    new[R.node] = old[R.node]
    new[R.secret] = old[R.secret]
  end
elseif #kept >= tonumber(ARGV[6]) then
  return {ST.full}
end
local out = {ST.ok, cmsgpack.pack(new)}
-- The tokens it replaced: the token index forgets them.
if old then
  for _, f in ipairs({R.voip, R.token}) do
    if old[f] ~= '' and old[f] ~= new[R.voip] and old[f] ~= new[R.token] then
      out[#out + 1] = old[f]
    end
  end
end
kept[#kept + 1] = new
redis.call('HSET', KEYS[1], ACCT, cmsgpack.pack(kept))
-- The hash holds many accounts: it lives while any of them registers.
redis.call('PEXPIRE', KEYS[1], ttl)
return out
