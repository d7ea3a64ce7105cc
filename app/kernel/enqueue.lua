-- enqueue.lua: accept a queued command: its Idempotency-Key claim (if any), its status and its
-- queue entry together, or none of them.
--
-- KEYS[1] status hash     KEYS[2] steps list     KEYS[3] the partition's commands stream
-- KEYS[4] the partition's status-notices stream  KEYS[5] the command's dedup record
-- KEYS[6] the partition's queue counters (hash: accepted, finished)
-- KEYS[7] optional: the (user, Idempotency-Key) record, in the same partition
--
-- ARGV[1] command id      ARGV[2] status fields, a JSON object of strings (at least one)
-- ARGV[3] step JSON       ARGV[4] envelope JSON (both stored as they are)
-- ARGV[5] TTL seconds, an integer >= 1
-- ARGV[6] approximate MAXLEN of the notices stream, an integer >= 0
-- ARGV[7] the command's W3C traceparent, or "": written as `tp` beside the queue entry and
--         the notice, so the worker (and the push of this status) continue the trace
-- ARGV[8] with KEYS[7]: the idempotency record JSON (stored as it is)
-- ARGV[9] with KEYS[7]: its TTL seconds, an integer >= 1
--
-- Constants (from Python): STATUS_NOTICE, TRACE_FIELD
-- STATUS_NOTICE: the status notice's field names on the stream (kernel/notices.py)
-- TRACE_FIELD: the field a traced queue entry carries its traceparent in (kernel/tracing.py)
--
-- Returns {"accepted"}; {"exists"} when this command id was accepted before; or
-- {"claimed", record} when the Idempotency-Key is already claimed. Only "accepted" wrote.
-- Every input is checked before the first write, so no write can fail on it (an error
-- reply, `enqueue: ...`, means nothing was written).

local MOST_FIELDS = 3000  -- unpack() passes at most 8000 values
local function fail(message) return redis.error_reply('enqueue: ' .. message) end
local function integer(value, least)
  if type(value) ~= 'string' or #value > 12 then return nil end
  if value ~= '0' and not string.match(value, '^%-?[1-9]%d*$') then return nil end
  local number = tonumber(value)
  if number < least then return nil end
  return number
end

local claiming = #KEYS == 7
if not ((#KEYS == 6 and #ARGV == 7) or (claiming and #ARGV == 9)) then
  return fail('6 keys and 7 arguments, or 7 keys and 9 arguments, are needed')
end
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
if #flat == 0 or #flat > 2 * MOST_FIELDS then
  return fail('status fields must be 1 to ' .. MOST_FIELDS)
end
if not integer(ARGV[5], 1) or (claiming and not integer(ARGV[9], 1)) then
  return fail('TTLs must be integers >= 1')
end
if not integer(ARGV[6], 0) then return fail('MAXLEN must be an integer >= 0') end

if claiming then
  local claimed = redis.call('GET', KEYS[7])
  if claimed then
    return {'claimed', claimed}
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then
  return {'exists'}
end
-- all checks passed: write.
if claiming then
  redis.call('SET', KEYS[7], ARGV[8], 'EX', ARGV[9])
end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[5])
local sender = fields['sender'] or ''
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'c', ARGV[4], TRACE_FIELD, ARGV[7])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', STATUS_NOTICE.command_id, ARGV[1],
             STATUS_NOTICE.sender, sender, STATUS_NOTICE.trace, ARGV[7])
else
  redis.call('XADD', KEYS[3], '*', 'c', ARGV[4])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', STATUS_NOTICE.command_id, ARGV[1],
             STATUS_NOTICE.sender, sender)
end
redis.call('HINCRBY', KEYS[6], 'accepted', 1)
return {'accepted'}
