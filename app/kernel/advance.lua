-- advance.lua: move a running command's status forward (a step, or progress) without a commit.
-- Never touches a command that has already finished, so a late or repeated call is harmless.
--
-- KEYS[1] status hash     KEYS[2] steps list     KEYS[3] the partition's status-notices stream
--
-- ARGV[1] command id      ARGV[2] status fields, a JSON object of strings
-- ARGV[3] step JSON or "" ARGV[4] only from this status ("" = any unfinished status)
-- ARGV[5] approximate MAXLEN of the notices stream
--
-- Returns 1 when the status changed, 0 otherwise.

local current = redis.call('HGET', KEYS[1], 'status')
if not current or current == 'succeeded' or current == 'failed' then
  return 0
end
if ARGV[4] ~= '' and current ~= ARGV[4] then
  return 0
end
local flat = {}
for field, value in pairs(cjson.decode(ARGV[2])) do
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end
if #flat > 0 then
  redis.call('HSET', KEYS[1], unpack(flat))
end
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
           'c', ARGV[1], 'u', redis.call('HGET', KEYS[1], 'sender') or '')
return 1
