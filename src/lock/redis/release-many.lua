-- Releases several locks of one owner in one step (compare-and-delete each). Fence counters stay until
-- their TTL.
-- KEYS     the lock keys
-- ARGV[1]  the owner's token
-- Returns  how many were released; the others had expired or belong to someone else.
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    released = released + redis.call('DEL', KEYS[i])
  end
end
return released
