-- trim.lua: trim a partition's stream up to what may go, in one step.
--
-- KEYS[1] the stream
-- KEYS[2] the partition's holds hash (keys.archive_holds; expired holds are removed)
-- ARGV[1] the first id that must stay for the archive and the consumer groups
-- ARGV[2] retention in milliseconds: entries younger than this (by the server's clock) stay
--
-- XTRIM MINID the smallest of ARGV[1], now - retention, every live hold's position and the
-- stream's last entry: a stream always keeps its last entry, so a consumer group made later
-- (a new read model) is delivered something, and learns from it what the archive holds before.
-- Returns {entries trimmed, the MINID used}. Every input is checked before the first write
-- (an error reply, `trim: ...`, means nothing was written).

local function fail(message) return redis.error_reply('trim: ' .. message) end
if #KEYS ~= 2 or #ARGV ~= 2 then return fail('2 keys and 2 arguments are needed') end
if not string.match(ARGV[1], '^%d+%-%d+$') then return fail('ARGV[1] must be an entry id') end
if not (#ARGV[2] <= 15 and string.match(ARGV[2], '^%d+$')) then
  return fail('the retention must be an integer >= 0 (milliseconds)')
end

local function parse(id)
  local dash = string.find(id, '-', 1, true)
  if not dash then return tonumber(id), 0 end
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end

local function smaller(a, b)
  local a_ms, a_seq = parse(a)
  local b_ms, b_seq = parse(b)
  if a_ms ~= b_ms then return a_ms < b_ms end
  return a_seq < b_seq
end

local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local minid = ARGV[1]
local retained = string.format('%d-0', math.max(0, now_ms - tonumber(ARGV[2])))
if smaller(retained, minid) then minid = retained end

local holds = redis.call('HGETALL', KEYS[2])
-- all checks passed: write (expired holds go; a hold written by hold.lua always parses).
for i = 1, #holds, 2 do
  local expires, position = string.match(holds[i + 1], '^(%d+) (.+)$')
  if not expires or tonumber(expires) < now_ms then
    redis.call('HDEL', KEYS[2], holds[i])
  elseif smaller(position, minid) then
    minid = position
  end
end

local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 then return {0, minid} end
if smaller(last[1][1], minid) then minid = last[1][1] end

local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', minid)
return {trimmed, minid}
