-- apply_batch.lua: a batch's read-model writes and the checkpoints of the read models it
-- moves, atomically, if every checkpoint is still the one the batch was read after (else
-- nothing: another owner moved one, and this one must stop). One read model (a projection's
-- own batch) or several (the projector's pass over a partition: kernel/projector_pass.py).
-- On a Cluster too: every key a batch of partition N writes carries N's hash tag
-- (kernel/keys.py), so they are all in the checkpoints' slot, which routes the call (the
-- keys the writes touch are not declared).
--
-- KEYS[i] the checkpoint of read model i (one key or more)
--
-- ARGV[2i-1] the checkpoint read model i's batch expects ("" when there was none)
-- ARGV[2i]   read model i's checkpoint to set, a stream entry id ("" to leave it: dead
--            letters being replayed behind it, or a read model with nothing to move)
-- ARGV[2n+1] (the last) JSON array of commands, each an array of strings (name, then
--            arguments): the commands projections write with (kernel/read_model_writes.py)
--            and the runtime's own (HSET, XADD of the view notices), in the forms SHAPES
--            below allows
--
-- Returns 1 when applied, 0 when a checkpoint had moved (nothing written).
-- Every input is checked before the first write — the whole command list: names, argument
-- counts, numbers where a command takes one — so no command can fail on its arguments once
-- the first one ran (an error reply, `apply_batch: ...`, means nothing was written). What the
-- keys hold is the read model's: one type per key, counters far from overflowing.

local MOST_ARGUMENTS = 7000  -- unpack() passes at most 8000 values
local concat, find, huge = table.concat, string.find, math.huge
local function fail(message) return redis.error_reply('apply_batch: ' .. message) end

-- an integer as Redis reads one (no sign but '-', no leading zero), of 12 digits at most
local function integer(value)
  return value == '0' or (#value <= 12 and find(value, '^%-?[1-9]%d*$') ~= nil)
end

-- a float as Redis reads one (strtod, which tonumber uses too, over the whole string: no
-- spaces), not NaN, not rounded to 0 or to infinity
local function float(value)
  if #value <= 20 and find(value, '^%-?%d+%.?%d*$') then return true end  -- the usual form
  local number = tonumber(value)
  if number == nil or number ~= number then return false end
  if number == 0 and find(value, '^[^eE]*[1-9]') then return false end
  if (number == huge or number == -huge) and not find(value, '[iI]') then return false end
  return not find(value, '%s')
end

-- per command: fewest and most arguments after its name, `paired` when those after the key
-- come in pairs, the indexes in the command of an integer (i1, i2) or a float (f1) argument,
-- `scores` (ZADD: every other one, from the first after the key), `xadd` (its own form)
local SHAPES = {
  HSET = {least = 3, paired = true},                  -- key field value ...
  HINCRBY = {least = 3, most = 3, i1 = 4},            -- key field increment
  ZADD = {least = 3, paired = true, scores = true},   -- key score member ...
  ZREM = {least = 2},                                 -- key member ...
  ZINCRBY = {least = 3, most = 3, f1 = 3},            -- key increment member
  INCRBY = {least = 2, most = 2, i1 = 3},             -- key increment
  LPUSH = {least = 2},                                -- key value ...
  RPUSH = {least = 2},                                -- key value ...
  LTRIM = {least = 3, most = 3, i1 = 3, i2 = 4},      -- key start stop
  EXPIRE = {least = 2, most = 2, i1 = 3},             -- key seconds
  EXPIREAT = {least = 2, most = 2, i1 = 3},           -- key epoch-seconds
  XADD = {least = 4, xadd = true},      -- key [MAXLEN [~|=] count] * field value ...
}
for _, shape in pairs(SHAPES) do shape.most = shape.most or MOST_ARGUMENTS end

-- what is wrong with a command, or nil (raises on an argument that is not a string)
local function check(command)
  if type(command) ~= 'table' then return 'a command must be a list' end
  concat(command)  -- raises unless every item is a string (or a number: Redis formats it)
  local name, count = command[1], #command - 1
  local shape = SHAPES[name]
  if not shape then return 'command not allowed: ' .. tostring(name) end
  if count < shape.least or count > shape.most then return name .. ': wrong number of arguments' end
  if shape.paired and count % 2 == 0 then return name .. ': arguments not in pairs' end
  if (shape.i1 and not integer(command[shape.i1])) or (shape.i2 and not integer(command[shape.i2]))
      or (shape.f1 and not float(command[shape.f1])) then
    return name .. ': an argument is not a number'
  end
  if shape.scores then
    for i = 3, count + 1, 2 do
      if not float(command[i]) then return name .. ': a score is not a number' end
    end
  end
  if shape.xadd then
    local i = 3
    if command[i] == 'MAXLEN' then
      i = i + 1
      if command[i] == '~' or command[i] == '=' then i = i + 1 end
      local maxlen = command[i]
      if maxlen ~= '0' and not (maxlen and #maxlen <= 9 and find(maxlen, '^[1-9]%d*$')) then
        return name .. ': MAXLEN must be an integer >= 0'
      end
      i = i + 1
    end
    if command[i] ~= '*' then return name .. ': the entry id must be *' end
    local fields = count + 1 - i
    if fields == 0 or fields % 2 ~= 0 then return name .. ': fields not in pairs' end
  end
  return nil
end

local models = #KEYS
if models < 1 or #ARGV ~= 2 * models + 1 then
  return fail('n keys (n >= 1) and 2n + 1 arguments are needed')
end
for i = 1, models do
  local new = ARGV[2 * i]
  if new ~= '' and not string.match(new, '^%d+%-%d+$') then
    return fail('the checkpoint to set must be a stream entry id')
  end
end
local decoded, commands = pcall(cjson.decode, ARGV[#ARGV])
if not decoded or type(commands) ~= 'table' or (#commands == 0 and next(commands) ~= nil) then
  return fail('commands must be a JSON array')
end
local function check_all()
  for index, command in ipairs(commands) do
    local problem = check(command)
    if problem then return 'command ' .. index .. ': ' .. problem end
  end
end
local checked, problem = pcall(check_all)
if not checked then return fail('a command must be a list of strings') end
if problem then return fail(problem) end

for i = 1, models do
  if (redis.call('GET', KEYS[i]) or '') ~= ARGV[2 * i - 1] then
    return 0
  end
end
-- all checks passed: write.
for _, command in ipairs(commands) do
  redis.call(unpack(command))
end
for i = 1, models do
  if ARGV[2 * i] ~= '' then
    redis.call('SET', KEYS[i], ARGV[2 * i])
  end
end
return 1
