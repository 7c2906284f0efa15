-- budget: a caller's or a remote domain's budget of new calls across all
-- callees (GCRA: one call every 60/per_minute s, bursts of per_minute).
-- Copies of one propose spend it once: the newest calls are remembered.
--
-- KEYS: 1 the budget hash
-- ARGV (after the prelude's four, the name in place of the account): 5 per minute  6 the call (callee/caller/id)
-- Returns {1} (within the budget) | {0}
local per_minute, call = tonumber(ARGV[5]), ARGV[6]
local b = redis.call('HMGET', KEYS[1], 'tat', 'seen')
local seen = b[2] or ''
if string.find('\n' .. seen .. '\n', '\n' .. call .. '\n', 1, true) then
  return {1}
end
local interval = 60000 / per_minute
local tat = math.max(tonumber(b[1] or '0'), NOW)
if tat - NOW > (per_minute - 1) * interval then
  return {0}
end
-- Keep the last eight calls.
local kept = {call}
for s in string.gmatch(seen, '[^\n]+') do
  if #kept < 8 then kept[#kept + 1] = s end
end
redis.call('HSET', KEYS[1], 'tat', tat + interval, 'seen', table.concat(kept, '\n'))
redis.call('PEXPIRE', KEYS[1], math.ceil(tat + interval - NOW) + 60000)
return {1}
