-- advance.lua: move a running command's status forward (a step, or progress) without a commit.
-- Never touches a command that has already finished, so a late or repeated call is harmless.
--
-- KEYS[1] status hash     KEYS[2] steps list     KEYS[3] the partition's status-notices stream
--
-- ARGV[1] command id      ARGV[2] status fields, a JSON object of strings
-- ARGV[3] step JSON or "" (stored as it is)
-- ARGV[4] only from this status ("" = any unfinished status)
-- ARGV[5] approximate MAXLEN of the notices stream, an integer >= 0
--
-- Constants (from Python): FINAL_STATUSES, STATUS_NOTICE
-- FINAL_STATUSES: the statuses a command ends in (kernel/messages.py), as a set
-- STATUS_NOTICE: the status notice's field names on the stream (kernel/notices.py)
--
-- Returns 1 when the status changed, 0 otherwise.
-- Every input is checked before the first write, so no write can fail on it (an error
-- reply, `advance: ...`, means nothing was written).

local function fail(message) return redis.error_reply('advance: ' .. message) end
if #KEYS ~= 3 or #ARGV ~= 5 then return fail('3 keys and 5 arguments are needed') end
local decoded, fields = pcall(cjson.decode, ARGV[2])
if not decoded or type(fields) ~= 'table' then return fail('status fields must be a JSON object') end
local flat = {}
for field, value in pairs(fields) do
  if type(field) ~= 'string' or type(value) ~= 'string' then
    return fail('status fields must be a JSON object of strings')
  end
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end
local maxlen = ARGV[5]
if not (maxlen == '0' or (#maxlen <= 15 and string.match(maxlen, '^[1-9]%d*$'))) then
  return fail('MAXLEN must be an integer >= 0')
end

local current = redis.call('HGET', KEYS[1], 'status')
if not current or FINAL_STATUSES[current] then
  return 0
end
if ARGV[4] ~= '' and current ~= ARGV[4] then
  return 0
end
-- all checks passed: write.
if #flat > 0 then
  redis.call('HSET', KEYS[1], unpack(flat))
end
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', STATUS_NOTICE.command_id, ARGV[1],
           STATUS_NOTICE.sender, redis.call('HGET', KEYS[1], 'sender') or '')
return 1
