-- lease.lua: take, keep or give back a lease on one (consumer group, partition).
--
-- KEYS[1] the lease key
-- ARGV[1] action: acquire | renew | release | take
-- ARGV[2] owner id
-- ARGV[3] time to live in milliseconds (acquire, renew, take)
--
-- Returns 1 when the caller holds the lease afterwards (release: when it was given back).
-- `take` holds it whoever held it (an operator's tool pausing a consumer: the holder's next
-- renewal fails, so it stops and waits until the lease is given back).

local holder = redis.call('GET', KEYS[1])
if ARGV[1] == 'acquire' then
  if holder and holder ~= ARGV[2] then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
elseif ARGV[1] == 'renew' then
  if holder ~= ARGV[2] then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
elseif ARGV[1] == 'take' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
elseif ARGV[1] == 'release' then
  if holder ~= ARGV[2] then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
return redis.error_reply('unknown lease action ' .. ARGV[1])
