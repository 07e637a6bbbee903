-- Releases several locks of one owner in one step (compare-and-delete each), and tells the waiters:
-- one PUBLISH of the releaser's id and the released lock keys (newline-separated) on the release channel, so that waiters in
-- other instances try again at once (a hint: a lost message only costs their backoff). Fence counters
-- stay until their TTL.
-- KEYS     the lock keys
-- ARGV[1]  the owner's token
-- ARGV[2]  the release channel ("" for none)
-- ARGV[3]  the releasing provider's id, first line of the message (it ignores its own releases)
-- Returns  how many were released; the others had expired or belong to someone else.
local released = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    released[#released + 1] = KEYS[i]
  end
end
if #released > 0 and ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\n' .. table.concat(released, '\n'))
end
return #released
