-- tokens: which account holds a device token, so that a token registered
-- under another account moves there. Fields are a hash of the token.
--
-- KEYS: 1 the token index hash
-- ARGV (after the prelude's four): 5 op (claim | forget)  6 token hash  7 ttl ms
-- Returns {previous account or ''}
local th = ARGV[6]
local old = redis.call('HGET', KEYS[1], th) or ''
if ARGV[5] == 'claim' then
  redis.call('HSET', KEYS[1], th, ACCT)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7]))
elseif old == ACCT then
  redis.call('HDEL', KEYS[1], th)
end
return {old}
