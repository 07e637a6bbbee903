-- Raises a key's fence counter to a token chosen by a Redlock quorum, if the caller still holds the lock.
-- Once every server of the quorum has counted up to the token, any later quorum (which shares at least
-- one server with this one) issues a larger token.
-- KEYS[1]  the lock key
-- KEYS[2]  the key's fence counter
-- ARGV[1]  the owner's token
-- ARGV[2]  the fencing token chosen for this acquisition (a whole number below 2^53)
-- ARGV[3]  how long the fence counter of an unused key is kept, in milliseconds
-- Returns  1 when the counter is now at least ARGV[2]; 0 when the lock is not the caller's any more.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if tonumber(ARGV[2]) > last then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return 1
