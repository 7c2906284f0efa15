-- sweep: drops the devices that aged out from a part of a devices hash
-- (accounts that never come back would keep them forever: the hash is
-- shared and lives while any account registers).
--
-- KEYS: 1 a devices hash
-- ARGV (after the prelude's four, '' for the account): 5 cursor  6 device ttl ms  7 count
-- Returns {next cursor, [token]...}: the tokens of the devices dropped
local res = redis.call('HSCAN', KEYS[1], ARGV[5], 'COUNT', tonumber(ARGV[7]))
local ttl = tonumber(ARGV[6])
local out = {res[1]}
local fields = res[2]
for i = 1, #fields, 2 do
  local ok, list = pcall(cmsgpack.unpack, fields[i + 1])
  if ok and type(list) == 'table' then
    local kept = {}
    for _, d in ipairs(list) do
      if usable(d, ttl) then
        kept[#kept + 1] = d
      elseif type(d) == 'table' then
        for _, f in ipairs({R.voip, R.token}) do
          if type(d[f]) == 'string' and d[f] ~= '' then out[#out + 1] = d[f] end
        end
      end
    end
    if #kept == 0 then
      redis.call('HDEL', KEYS[1], fields[i])
    elseif #kept < #list then
      redis.call('HSET', KEYS[1], fields[i], cmsgpack.pack(kept))
    end
  end
end
return out
