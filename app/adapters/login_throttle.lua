-- login_throttle.lua: a sign-in attempt against its throttle scopes, and how it ended.
--
-- KEYS[2i-1] scope i's count      KEYS[2i] scope i's "not before" key (exists = wait)
-- Scope 1 is the user's own (username + address, or the known device); the others (the
-- address as a whole) count failures only, so many people signing in behind one address
-- at once are never slowed down by each other's successes.
-- ARGV[1] action: attempt | failed | succeeded
-- ARGV[2] first wait in milliseconds     ARGV[3] longest wait in milliseconds
-- ARGV[4] seconds after which a scope's count is forgotten
-- ARGV[4+i] free count of scope i before each further one makes the next wait
--
-- attempt: if any scope is waiting, returns its longest wait left (ms) and counts nothing.
--   Otherwise counts the attempt in scope 1 (up front, so parallel guesses at one user do
--   not slip through) and returns 0.
-- failed: counts the failure in the other scopes. succeeded: scope 1 starts over.

local first, longest, forget = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

local function count(i)
  local n = redis.call('INCR', KEYS[2 * i - 1])
  redis.call('EXPIRE', KEYS[2 * i - 1], forget)
  local over = n - tonumber(ARGV[4 + i])
  if over > 0 then
    local wait = math.min(longest, first * 2 ^ math.min(over - 1, 30))
    redis.call('SET', KEYS[2 * i], '1', 'PX', math.floor(wait))
  end
end

local scopes = #KEYS / 2
if ARGV[1] == 'attempt' then
  local left = 0
  for i = 1, scopes do
    local ttl = redis.call('PTTL', KEYS[2 * i])
    if ttl > left then left = ttl end
  end
  if left > 0 then return left end
  count(1)
  return 0
elseif ARGV[1] == 'failed' then
  for i = 2, scopes do count(i) end
  return 0
elseif ARGV[1] == 'succeeded' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 0
end
return redis.error_reply('unknown throttle action ' .. ARGV[1])
