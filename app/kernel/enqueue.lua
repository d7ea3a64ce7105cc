-- enqueue.lua: accept a queued command: its Idempotency-Key claim (if any), its status and its
-- queue entry together, or none of them.
--
-- KEYS[1] status hash     KEYS[2] steps list     KEYS[3] the partition's commands stream
-- KEYS[4] the partition's status-notices stream  KEYS[5] the command's dedup record
-- KEYS[6] the partition's queue counters (hash: accepted, finished)
-- KEYS[7] optional: the (user, Idempotency-Key) record, in the same partition
--
-- ARGV[1] command id      ARGV[2] status fields, a JSON object of strings
-- ARGV[3] step JSON       ARGV[4] envelope JSON  ARGV[5] TTL seconds
-- ARGV[6] approximate MAXLEN of the notices stream
-- ARGV[7] the command's W3C traceparent, or "": written as `tp` beside the queue entry and
--         the notice, so the worker (and the push of this status) continue the trace
-- ARGV[8] with KEYS[7]: the idempotency record JSON   ARGV[9] its TTL seconds
--
-- Returns {"accepted"}; {"exists"} when this command id was accepted before; or
-- {"claimed", record} when the Idempotency-Key is already claimed. Only "accepted" wrote.

if KEYS[7] then
  local claimed = redis.call('GET', KEYS[7])
  if claimed then
    return {'claimed', claimed}
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then
  return {'exists'}
end
local fields = cjson.decode(ARGV[2])
local flat = {}
for field, value in pairs(fields) do
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end
if KEYS[7] then
  redis.call('SET', KEYS[7], ARGV[8], 'EX', tonumber(ARGV[9]))
end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'c', ARGV[4], 'tp', ARGV[7])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'c', ARGV[1],
             'u', fields['sender'] or '', 'tp', ARGV[7])
else
  redis.call('XADD', KEYS[3], '*', 'c', ARGV[4])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'c', ARGV[1], 'u', fields['sender'] or '')
end
redis.call('HINCRBY', KEYS[6], 'accepted', 1)
return {'accepted'}
