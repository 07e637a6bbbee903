-- Takes every free lock of a list in one atomic step, issuing each its next fencing token as acquire.lua
-- does for one; the busy ones are left alone (the caller does not wait for them while holding the rest).
-- KEYS[2i-1]  the i-th lock key (its value is the owner's token, its TTL the lease)
-- KEYS[2i]    the i-th key's fence counter (its TTL is ARGV[3], renewed at every acquisition)
-- ARGV[1]  the owner's token (random, one per acquisition, shared by the locks it takes)
-- ARGV[2]  the lease in milliseconds
-- ARGV[3]  how long the fence counter of an unused key is kept, in milliseconds
-- Returns  one number per lock, in order: its new fencing token (> 0) when taken, 0 when someone else
--          holds it.
--
-- Each token is max(last token + 1, this server's clock in microseconds), below 2^53 (acquire.lua).
local now = redis.call('TIME')
local nowMicros = tonumber(now[1]) * 1000000 + tonumber(now[2])
local fences = {}
for i = 1, #KEYS, 2 do
  if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
    local last = tonumber(redis.call('GET', KEYS[i + 1]) or '0') or 0
    local fence = math.max(last + 1, nowMicros)
    -- %.0f: tostring() would print a 16-digit number in exponent form and lose digits.
    redis.call('SET', KEYS[i + 1], string.format('%.0f', fence), 'PX', ARGV[3])
    fences[#fences + 1] = fence
  else
    fences[#fences + 1] = 0
  end
end
return fences
