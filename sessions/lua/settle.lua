-- settle: a wake's push failed for good (it will never be sent): the wake
-- is given up and its lease goes, if the wake is still this attempt's
-- (another may have taken it over and be pushing it). A delivered push
-- needs no script (Store.pushedCall).
--
-- KEYS: 1 the call
-- ARGV (after the prelude's four): 5 op (failed)  6 ref  7 device id  8 attempt
--   9 text for the trace ('' for none)
-- Returns {1} | {0}: the wake was not this attempt's to give up
local ref, dev, attempt = ARGV[6], ARGV[7], ARGV[8]
if ARGV[9] ~= '' then
  trace(ref, ARGV[9])
end
local field = 'w:' .. dev
local kind, state, att = parse_mark(redis.call('HGET', KEYS[1], field))
if state ~= 'p' or att ~= attempt then
  return {0}
end
redis.call('HSET', KEYS[1], field, kind .. ':x:' .. attempt)
done_timer(lease_member(ref, dev))
return {1}
