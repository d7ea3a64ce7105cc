-- apply_batch.lua: a projection batch's read-model writes and its checkpoint, atomically, if
-- the checkpoint is still the one the batch was read after (else nothing: another owner
-- moved it, and this one must stop). Runs on the read-model server, never on a Cluster: the
-- keys the writes touch are not declared.
--
-- KEYS[1] the projection partition's checkpoint
--
-- ARGV[1] the checkpoint the batch expects ("" when there was none)
-- ARGV[2] the checkpoint to set, a stream entry id ("" to leave it: dead letters being
--         replayed behind it)
-- ARGV[3] JSON array of commands, each an array of strings (name, then arguments): the
--         commands projections write with (kernel/read_model_writes.py) and the runtime's
--         own (HSET, XADD of the view notices), in the forms SHAPES below allows
--
-- Returns 1 when applied, 0 when the checkpoint had moved (nothing written).
-- Every input is checked before the first write — the whole command list: names, argument
-- counts, numbers where a command takes one — so no command can fail on its arguments once
-- the first one ran (an error reply, `apply_batch: ...`, means nothing was written). What the
-- keys hold is the read model's: one type per key, counters far from overflowing.

local MOST_ARGUMENTS = 7000  -- unpack() passes at most 8000 values
local function fail(message) return redis.error_reply('apply_batch: ' .. message) end

-- an integer as Redis reads one (no sign but '-', no leading zero), small enough for any use
local function integer(value)
  return value == '0' or (#value <= 12 and string.match(value, '^%-?[1-9]%d*$') ~= nil)
end

-- a float as Redis reads one: the whole string, finite or inf, not rounded to 0 or infinity
local function float(value)
  if value == 'inf' or value == '+inf' or value == '-inf' then return true end
  local mantissa = string.match(value, '^[+-]?%d+%.?%d*') or string.match(value, '^[+-]?%.%d+')
  if not mantissa then return false end
  local exponent = string.sub(value, #mantissa + 1)
  if exponent ~= '' and not string.match(exponent, '^[eE][+-]?%d+$') then return false end
  local number = tonumber(value)
  return number ~= nil and number > -math.huge and number < math.huge
    and (number ~= 0 or not string.match(mantissa, '[1-9]'))
end

-- per command: fewest and most arguments after its name (no `most`: any), `paired` when those
-- after the key come in pairs, and the checks of arguments by position (1 is the key)
local SHAPES = {
  HSET = {least = 3, paired = true},                        -- key field value ...
  HINCRBY = {least = 3, most = 3, checks = {[3] = integer}}, -- key field increment
  ZADD = {least = 3, paired = true, scores = true},         -- key score member ...
  ZREM = {least = 2},                                       -- key member ...
  ZINCRBY = {least = 3, most = 3, checks = {[2] = float}},  -- key increment member
  INCRBY = {least = 2, most = 2, checks = {[2] = integer}}, -- key increment
  LPUSH = {least = 2},                                      -- key value ...
  RPUSH = {least = 2},                                      -- key value ...
  LTRIM = {least = 3, most = 3, checks = {[2] = integer, [3] = integer}}, -- key start stop
  EXPIRE = {least = 2, most = 2, checks = {[2] = integer}}, -- key seconds
  XADD = {least = 4, xadd = true},             -- key [MAXLEN [~|=] count] * field value ...
}

local function check(command)
  if type(command) ~= 'table' or #command == 0 then return 'a command must be a list' end
  if #command > MOST_ARGUMENTS then return 'a command has at most ' .. MOST_ARGUMENTS end
  for _, item in ipairs(command) do
    if type(item) ~= 'string' then return 'a command must be a list of strings' end
  end
  local name = command[1]
  local shape = SHAPES[name]
  if not shape then return 'command not allowed: ' .. name end
  local count = #command - 1
  if count < shape.least or (shape.most and count > shape.most) then
    return name .. ': wrong number of arguments'
  end
  if shape.paired and (count - 1) % 2 ~= 0 then return name .. ': arguments not in pairs' end
  for position, valid in pairs(shape.checks or {}) do
    if not valid(command[position + 1]) then
      return name .. ': argument ' .. position .. ' is not a number'
    end
  end
  if shape.scores then
    for i = 3, #command, 2 do
      if not float(command[i]) then return name .. ': a score is not a number' end
    end
  end
  if shape.xadd then
    local i = 3
    if command[i] == 'MAXLEN' then
      i = i + 1
      if command[i] == '~' or command[i] == '=' then i = i + 1 end
      if not command[i] or not integer(command[i]) or string.sub(command[i], 1, 1) == '-' then
        return name .. ': MAXLEN must be an integer >= 0'
      end
      i = i + 1
    end
    if command[i] ~= '*' then return name .. ': the entry id must be *' end
    local fields = #command - i
    if fields == 0 or fields % 2 ~= 0 then return name .. ': fields not in pairs' end
  end
  return nil
end

if #KEYS ~= 1 or #ARGV ~= 3 then return fail('1 key and 3 arguments are needed') end
if ARGV[2] ~= '' and not string.match(ARGV[2], '^%d+%-%d+$') then
  return fail('the checkpoint to set must be a stream entry id')
end
local decoded, commands = pcall(cjson.decode, ARGV[3])
if not decoded or type(commands) ~= 'table' or (#commands == 0 and next(commands) ~= nil) then
  return fail('commands must be a JSON array')
end
for index, command in ipairs(commands) do
  local problem = check(command)
  if problem then return fail('command ' .. index .. ': ' .. problem) end
end

if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then
  return 0
end
-- all checks passed: write.
for _, command in ipairs(commands) do
  redis.call(unpack(command))
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
