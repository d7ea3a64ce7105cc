-- hold.lua: a reader keeps (or lets go of) a partition's stream entries after a position.
--
-- KEYS[1] the partition's holds hash (keys.archive_holds)
-- ARGV[1] action: hold | release
-- ARGV[2] holder (e.g. `rebuild.projection.catalog`)
-- ARGV[3] position: the trim keeps the entries from this id on (hold)
-- ARGV[4] time to live in milliseconds (hold): a holder that dies lets go by itself
--
-- The expiry is written by the server's clock (TIME), which the trim reads too.

if ARGV[1] == 'release' then
  return redis.call('HDEL', KEYS[1], ARGV[2])
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[2], string.format('%d %s', now_ms + tonumber(ARGV[4]), ARGV[3]))
return 1
