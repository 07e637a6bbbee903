-- Takes a lock if it is free and issues the next fencing token for its key, in one atomic step.
-- KEYS[1]  the lock key (its value is the owner's token, its TTL the lease)
-- KEYS[2]  the key's fence counter (its TTL is ARGV[3], renewed at every acquisition)
-- ARGV[1]  the owner's token (random, one per acquisition)
-- ARGV[2]  the lease in milliseconds
-- ARGV[3]  how long the fence counter of an unused key is kept, in milliseconds
-- Returns  the new fencing token (> 0) when the lock was taken, 0 when someone else holds it.
--
-- The token is max(last token + 1, this server's clock in microseconds): it grows by one per
-- acquisition while the counter survives, and if the counter is gone (expired after ARGV[3] unused,
-- evicted, or the server restarted without its data) it starts again from the clock, which is past
-- every token issued before as long as no token ran ahead of the clock by ARGV[3] (docs/locks.md).
-- Tokens stay below 2^53, so they are exact as Lua and JavaScript numbers.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local now = redis.call('TIME')
local nowMicros = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local fence = math.max(last + 1, nowMicros)
-- %.0f: tostring() would print a 16-digit number in exponent form and lose digits.
redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', ARGV[3])
return fence
