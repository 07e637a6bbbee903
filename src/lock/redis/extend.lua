-- Renews a lease, only for its owner.
-- KEYS[1]  the lock key
-- ARGV[1]  the owner's token
-- ARGV[2]  the new lease in milliseconds, from now
-- Returns  1 when renewed; 0 when the lock expired or belongs to someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
