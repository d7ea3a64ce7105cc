-- login_throttle.lua: count a sign-in attempt against its scopes, or settle a successful one.
--
-- KEYS[2i-1] scope i's attempt count     KEYS[2i] scope i's "not before" key (exists = wait)
-- ARGV[1] action: attempt | succeeded
-- ARGV[2] first wait in milliseconds     ARGV[3] longest wait in milliseconds
-- ARGV[4] seconds after which a scope's count is forgotten
-- ARGV[4+i] (attempt) free attempts of scope i before each further one makes the next wait
--
-- attempt: if any scope is waiting, returns its longest wait left (ms) and counts nothing.
--   Otherwise counts the attempt in every scope (up front, so parallel attempts cannot slip
--   through), starts the wait a scope has earned (doubling per attempt past its free ones),
--   and returns 0. A successful attempt is given back with `succeeded`.
-- succeeded: scope 1 (the user's own) starts over; the others get the attempt back.

local first, longest, forget = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local scopes = #KEYS / 2
if ARGV[1] == 'attempt' then
  local left = 0
  for i = 1, scopes do
    local ttl = redis.call('PTTL', KEYS[2 * i])
    if ttl > left then left = ttl end
  end
  if left > 0 then return left end
  for i = 1, scopes do
    local count = redis.call('INCR', KEYS[2 * i - 1])
    redis.call('EXPIRE', KEYS[2 * i - 1], forget)
    local over = count - tonumber(ARGV[4 + i])
    if over > 0 then
      local wait = math.min(longest, first * 2 ^ math.min(over - 1, 30))
      redis.call('SET', KEYS[2 * i], '1', 'PX', math.floor(wait))
    end
  end
  return 0
elseif ARGV[1] == 'succeeded' then
  redis.call('DEL', KEYS[1], KEYS[2])
  for i = 2, scopes do
    local count = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
    if count > 0 then redis.call('DECR', KEYS[2 * i - 1]) end
  end
  return 0
end
return redis.error_reply('unknown throttle action ' .. ARGV[1])
