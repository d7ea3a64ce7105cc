-- lease.lua: take, keep or give back a lease on one (consumer group, partition).
--
-- KEYS[1] the lease key
-- ARGV[1] action: acquire | renew | release | take
-- ARGV[2] owner id
-- ARGV[3] time to live in milliseconds, an integer >= 1 (used by acquire, renew, take)
--
-- Returns 1 when the caller holds the lease afterwards (release: when it was given back).
-- `take` holds it whoever held it (an operator's tool pausing a consumer: the holder's next
-- renewal fails, so it stops and waits until the lease is given back).
-- Every input is checked before the one write, so it cannot fail on it (an error reply,
-- `lease: ...`, means nothing was written).

local function fail(message) return redis.error_reply('lease: ' .. message) end
if #KEYS ~= 1 or #ARGV ~= 3 then return fail('1 key and 3 arguments are needed') end
local action, ttl = ARGV[1], ARGV[3]
if action ~= 'acquire' and action ~= 'renew' and action ~= 'release' and action ~= 'take' then
  return fail('unknown action ' .. action)
end
if #ttl > 12 or not string.match(ttl, '^[1-9]%d*$') then
  return fail('the time to live must be an integer >= 1')
end

local holder = redis.call('GET', KEYS[1])
if action == 'acquire' then
  if holder and holder ~= ARGV[2] then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
  return 1
elseif action == 'renew' then
  if holder ~= ARGV[2] then return 0 end
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
elseif action == 'take' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
  return 1
end
if holder ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
