-- remove: removes a device, or one dead token of it (from whichever of the
-- account's devices holds it). A device left with no token is removed.
--
-- KEYS: 1 the account's devices hash
-- ARGV (after the prelude's four): 5 device id ('' with a token: any device)
--   6 token, raw ('' removes the whole device)
--   7 when the push service found the token invalid, unix s (0: unknown):
--     a device that registered after it keeps the token
-- Returns {removed, [tokens]...} | {updated} | {kept} | {none}
local dev, token, since = ARGV[5], ARGV[6], tonumber(ARGV[7])
local list = devices(KEYS[1])
local kept, status, gone = {}, ST.none, {}
for _, d in ipairs(list) do
  local match = dev == '' or d[R.id] == dev
  if not match or status ~= ST.none then
    kept[#kept + 1] = d
  elseif token == '' then
    status = ST.removed
    gone = {d[R.voip], d[R.token]}
  elseif d[R.voip] ~= token and d[R.token] ~= token then
    kept[#kept + 1] = d
  elseif since > 0 and (tonumber(d[R.registered]) or 0) > since then
    status = ST.kept
    kept[#kept + 1] = d
  else
    if d[R.voip] == token then d[R.voip] = '' end
    if d[R.token] == token then d[R.token] = '' end
    gone = {token}
    if wake_kind(d) then
      status = ST.updated
      kept[#kept + 1] = d
    else
      status = ST.removed
    end
  end
end
if status == ST.none or status == ST.kept then
  return {status}
end
if #kept == 0 then
  redis.call('HDEL', KEYS[1], ACCT)
else
  redis.call('HSET', KEYS[1], ACCT, cmsgpack.pack(kept))
end
local out = {status}
for _, t in ipairs(gone) do
  if t ~= '' then out[#out + 1] = t end
end
return out
