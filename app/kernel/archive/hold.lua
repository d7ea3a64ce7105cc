-- hold.lua: a reader keeps (or lets go of) a partition's stream entries after a position.
--
-- KEYS[1] the partition's holds hash (keys.archive_holds)
-- ARGV[1] action: hold | release
-- ARGV[2] holder (e.g. `rebuild.projection.catalog`), not empty
-- ARGV[3] position (hold): the trim keeps the entries from this id (ms-seq) on
-- ARGV[4] time to live in milliseconds (hold), an integer > 0: a holder that dies lets go
--
-- The expiry is written by the server's clock (TIME), which the trim reads too. Every input
-- is checked before the first write (an error reply, `hold: ...`, means nothing was written).

local function fail(message) return redis.error_reply('hold: ' .. message) end
if #KEYS ~= 1 then return fail('1 key is needed') end
local action = ARGV[1]
if action == 'release' then
  if #ARGV ~= 2 or ARGV[2] == '' then return fail('release takes a holder') end
  return redis.call('HDEL', KEYS[1], ARGV[2])
end
if action ~= 'hold' then return fail('the action must be hold or release') end
if #ARGV ~= 4 or ARGV[2] == '' then return fail('hold takes a holder, a position and a TTL') end
if not string.match(ARGV[3], '^%d+%-%d+$') then return fail('the position must be an entry id') end
local ttl = ARGV[4]
if not (#ttl <= 12 and string.match(ttl, '^[1-9]%d*$')) then
  return fail('the TTL must be an integer > 0')
end

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
-- all checks passed: write.
redis.call('HSET', KEYS[1], ARGV[2], string.format('%d %s', now_ms + tonumber(ttl), ARGV[3]))
return 1
