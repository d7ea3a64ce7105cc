-- enqueue.lua: accept an async command: its status and its queue entry together, or neither.
--
-- KEYS[1] status hash     KEYS[2] steps list     KEYS[3] the partition's commands stream
-- KEYS[4] the partition's status-notices stream  KEYS[5] the command's dedup record
--
-- ARGV[1] command id      ARGV[2] status fields, a JSON object of strings
-- ARGV[3] step JSON       ARGV[4] envelope JSON  ARGV[5] TTL seconds
-- ARGV[6] approximate MAXLEN of the notices stream
--
-- Returns 1 when accepted now, 0 when this command id was accepted before (nothing written).

if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then
  return 0
end
local fields = cjson.decode(ARGV[2])
local flat = {}
for field, value in pairs(fields) do
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
redis.call('XADD', KEYS[3], '*', 'c', ARGV[4])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'c', ARGV[1], 'u', fields['sender'] or '')
return 1
