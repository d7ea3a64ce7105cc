-- settle_running.lua: remove the running commands a sweeper settled, each only if what showed
-- it settled is still there; look at the others again later.
--
-- The sweeper decides from reads; its removal may land after a failover set the partition
-- back to a replica that never got what it read (a lost sale). Checked here, in the same
-- script and partition as the removal, an entry whose proof vanished stays: the sweeper
-- finds it again.
--
-- KEYS[1]  the partition's running commands (sorted set: command id -> ms of its last change)
-- KEYS[2..] the proofs: hashes with a `status` field (dedup records, command statuses)
--
-- ARGV[1]  ms since the epoch, an integer >= 0: the new score of entries looked at again
-- ARGV[2]  JSON array of command ids to look at again (rescored if still there)
-- ARGV[3]  JSON array of settled entries, each [command id, [key number, ...]]: the numbers
--          of its proofs among KEYS (2..#KEYS); removed only if every proof holds, else
--          looked at again
-- ARGV[4]  JSON array, one boolean per proof key (KEYS[2..]): true = its status must be final
--          (a command that ended), false = the hash must exist (a step that landed)
--
-- Constants (from Python): FINAL_STATUSES
--
-- Returns the number of entries removed. Every input is checked before the first write (an
-- error reply, `settle_running: ...`, means nothing was written).

local function fail(message) return redis.error_reply('settle_running: ' .. message) end
local function array(json)
  local decoded, value = pcall(cjson.decode, json)
  if not decoded or type(value) ~= 'table' or (#value == 0 and next(value) ~= nil) then
    return nil
  end
  return value
end

if #KEYS < 1 or #ARGV ~= 4 then return fail('1 key or more and 4 arguments are needed') end
if not string.match(ARGV[1], '^%d+$') or #ARGV[1] > 15 then
  return fail('the score must be an integer >= 0')
end
local again, settled, finals = array(ARGV[2]), array(ARGV[3]), array(ARGV[4])
if not again or not settled or not finals then
  return fail('the entries and the proofs must be JSON arrays')
end
if #finals ~= #KEYS - 1 then return fail('one boolean per proof key is needed') end
for _, final in ipairs(finals) do
  if type(final) ~= 'boolean' then return fail('a proof\'s kind must be a boolean') end
end
for _, id in ipairs(again) do
  if type(id) ~= 'string' or id == '' then return fail('a command id must be a string') end
end
for _, entry in ipairs(settled) do
  if type(entry) ~= 'table' or type(entry[1]) ~= 'string' or entry[1] == ''
      or type(entry[2]) ~= 'table' or #entry ~= 2 then
    return fail('a settled entry must be [command id, [key number, ...]]')
  end
  for _, number in ipairs(entry[2]) do
    if type(number) ~= 'number' or number ~= math.floor(number) or number < 2
        or number > #KEYS then
      return fail('a proof must be the number of a key from 2 to ' .. #KEYS)
    end
  end
end

local function holds(number)
  local status = redis.call('HGET', KEYS[number], 'status')
  if not status then return false end
  return not finals[number - 1] or FINAL_STATUSES[status] == true
end

local removed = 0
for _, entry in ipairs(settled) do
  local proven = true
  for _, number in ipairs(entry[2]) do
    if not holds(number) then proven = false break end
  end
  if proven then
    removed = removed + redis.call('ZREM', KEYS[1], entry[1])
  else
    again[#again + 1] = entry[1]
  end
end
for _, id in ipairs(again) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[1], id)
end
return removed
