-- Raises several keys' fence counters to the tokens a Redlock quorum chose (raise-fence.lua, per key),
-- for the locks the caller still holds.
-- KEYS[2i-1]  the i-th lock key
-- KEYS[2i]    the i-th key's fence counter
-- ARGV[1]     the owner's token
-- ARGV[2]     how long the fence counter of an unused key is kept, in milliseconds
-- ARGV[2+i]   the fencing token chosen for the i-th lock (a whole number below 2^53)
-- Returns  one number per lock, in order: 1 when its counter is now at least its token; 0 when the lock
--          is not the caller's any more.
local raised = {}
for i = 1, #KEYS, 2 do
  local n = (i + 1) / 2
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then
    raised[n] = 0
  else
    local last = tonumber(redis.call('GET', KEYS[i + 1]) or '0') or 0
    if tonumber(ARGV[2 + n]) > last then
      redis.call('SET', KEYS[i + 1], ARGV[2 + n], 'PX', ARGV[2])
    end
    raised[n] = 1
  end
end
return raised
