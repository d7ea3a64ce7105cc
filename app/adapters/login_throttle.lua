-- login_throttle.lua: a sign-in attempt against its throttle scopes, and how it ended.
--
-- KEYS[2i-1] scope i's count      KEYS[2i] scope i's "not before" key (exists = wait)
-- Scope 1 is the user's own (username + address, or the known device); the others (the
-- address as a whole) count failures only, so many people signing in behind one address
-- at once are never slowed down by each other's successes.
-- ARGV[1] action: attempt | failed | succeeded
-- ARGV[2] first wait in milliseconds     ARGV[3] longest wait in milliseconds (both >= 1)
-- ARGV[4] seconds after which a scope's count is forgotten (>= 1)
-- ARGV[4+i] free count of scope i before each further one makes the next wait (>= 0)
--
-- attempt: if any scope is waiting, returns its longest wait left (ms) and counts nothing.
--   Otherwise counts the attempt in scope 1 (up front, so parallel guesses at one user do
--   not slip through) and returns 0.
-- failed: counts the failure in the other scopes. succeeded: scope 1 starts over.
-- Every input is checked before the first write, so no write can fail on it (an error
-- reply, `login_throttle: ...`, means nothing was written).

local function fail(message) return redis.error_reply('login_throttle: ' .. message) end
local function integer(value, least)
  if type(value) ~= 'string' or #value > 12 then return nil end
  if value ~= '0' and not string.match(value, '^%-?[1-9]%d*$') then return nil end
  local number = tonumber(value)
  if number < least then return nil end
  return number
end

local scopes = #KEYS / 2
if #KEYS == 0 or #KEYS % 2 ~= 0 then return fail('two keys per scope are needed') end
if #ARGV ~= 4 + scopes then return fail('4 arguments and one per scope are needed') end
local action = ARGV[1]
if action ~= 'attempt' and action ~= 'failed' and action ~= 'succeeded' then
  return fail('unknown action ' .. action)
end
local first, longest, forget = integer(ARGV[2], 1), integer(ARGV[3], 1), integer(ARGV[4], 1)
if not first or not longest or not forget then
  return fail('waits and the time to forget must be integers >= 1')
end
local free = {}
for i = 1, scopes do
  free[i] = integer(ARGV[4 + i], 0)
  if not free[i] then return fail('free counts must be integers >= 0') end
end

local function count(i)
  local n = redis.call('INCR', KEYS[2 * i - 1])
  redis.call('EXPIRE', KEYS[2 * i - 1], forget)
  local over = n - free[i]
  if over > 0 then
    local wait = math.min(longest, first * 2 ^ math.min(over - 1, 30))
    redis.call('SET', KEYS[2 * i], '1', 'PX', math.floor(wait))
  end
end

if action == 'attempt' then
  local left = 0
  for i = 1, scopes do
    local ttl = redis.call('PTTL', KEYS[2 * i])
    if ttl > left then left = ttl end
  end
  if left > 0 then return left end
  count(1)
  return 0
elseif action == 'failed' then
  for i = 2, scopes do count(i) end
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 0
