-- Renews several leases of one owner in one step, each only if it is still the owner's.
-- KEYS     the lock keys
-- ARGV[1]  the owner's token
-- ARGV[2]  the new lease in milliseconds, from now
-- Returns  one number per lock, in order: 1 when renewed; 0 when it expired or belongs to someone else.
local renewed = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    renewed[i] = redis.call('PEXPIRE', KEYS[i], ARGV[2])
  else
    renewed[i] = 0
  end
end
return renewed
