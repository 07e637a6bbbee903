-- Releases a lock, only for its owner (compare-and-delete), and tells the waiters: PUBLISH of the lock
-- key on the release channel, so that a waiter in another instance tries again at once instead of at the
-- end of its backoff (a hint: a lost message only costs that backoff). The fence counter stays until
-- its TTL.
-- KEYS[1]  the lock key
-- ARGV[1]  the owner's token
-- ARGV[2]  the release channel ("" for none)
-- ARGV[3]  the releasing provider's id, first line of the message (it ignores its own releases)
-- Returns  1 when released; 0 when the lock had already expired or belongs to someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] ~= '' then
    redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\n' .. KEYS[1])
  end
  return 1
end
return 0
