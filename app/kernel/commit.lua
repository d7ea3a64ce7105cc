-- commit.lua: apply one command's decision atomically, or nothing at all.
-- Everything is checked before the first write (Redis scripts do not roll back).
--
-- KEYS[1]  dedup record of the command (hash: status, position, error)
-- KEYS[2]  the partition's events stream
-- KEYS[3]  the partition's journal stream (finished commands, for the command log)
-- KEYS[4]  the partition's integration-events stream
-- KEYS[5]  the partition's status-notices stream (capped; read by the WebSocket hubs)
-- KEYS[6]  the aggregate's state (hash: v = version, s = state JSON, w = last writer's id)
-- KEYS[7]  the partition's queue counters (hash: accepted, finished)
-- KEYS[8]  the partition's running commands (sorted set: command id -> ms of its last change)
-- KEYS[9..] two per status update, in ARGV[9]'s order: status hash, steps list
--
-- ARGV[1]  partition number (for the position token)
-- ARGV[2]  expected aggregate version; -1 = this commit writes no aggregate
-- ARGV[3]  new state JSON, or "" to leave the state as it is (stored as it is)
-- ARGV[4]  outcome status for the dedup record: one of OUTCOME_STATUSES
-- ARGV[5]  error problem JSON, or "" (stored as it is)
-- ARGV[6]  TTL in seconds of the dedup record and status hashes, an integer >= 1
-- ARGV[7]  JSON array of events, each a flat array of XADD field/value strings
-- ARGV[8]  JSON array of integration-event JSON strings
-- ARGV[9]  JSON array of status updates: {id, fields, steps, final, track} (fields: an
--          object of strings; steps: step JSON strings, stored as they are; final: a boolean,
--          optional; track: ms since the epoch, optional, 0 = none: a long-running command's
--          change, whose id is scored with it in KEYS[8])
--          a field whose value is "$position" receives this commit's position;
--          an update to a command that already finished is skipped;
--          a final update appends the command's outcome to the journal, and counts it as
--          finished in the queue counters if it was queued
-- ARGV[10] approximate MAXLEN of the notices stream, an integer >= 0
-- ARGV[11] approximate MAXLEN of the journal stream, an integer >= 0
-- ARGV[12] a position token the outcome must also cover (effects committed elsewhere
--          before this commit), or ""
-- ARGV[13] with ARGV[2] >= 0: the id of the command the decision expects to have written the
--          aggregate last ("" for none). Version and writer together name the state decided
--          on, so the second of two pipelined commits of one aggregate cannot land on a state
--          whose version only happens to match after the first one failed its check.
-- ARGV[14] this command's id (recorded as the aggregate's last writer)
-- ARGV[15] the command's W3C traceparent, or "": written as `tp` beside each integration event
--          and status notice (the events carry theirs in their own field lists)
-- ARGV[16] ms since the epoch, or "0": this command is scored with it among the partition's
--          running commands (KEYS[8]) when it lands, for a process's sweeper to settle (a
--          hold whose fate another aggregate decides)
--
-- Constants (from Python): FINAL_STATUSES, OUTCOME_STATUSES, STATUS_NOTICE, TRACE_FIELD
-- FINAL_STATUSES: the statuses a command ends in; OUTCOME_STATUSES: those and `processing`,
-- as sets (kernel/messages.py). STATUS_NOTICE: the status notice's field names on the stream
-- (kernel/notices.py). TRACE_FIELD: the field of an integration event's traceparent.
--
-- Returns {"ok", position} | {"dup", status, position, error} | {"conflict", version}
-- Every input is checked before the first write, so no write can fail on it (an error
-- reply, `commit: ...`, means nothing was written).

local MOST_FIELDS = 3000  -- unpack() passes at most 8000 values
local function fail(message) return redis.error_reply('commit: ' .. message) end
-- an integer of 15 digits at most (exact in a Lua number; ms since the epoch take 13)
local function integer(value, least)
  if type(value) ~= 'string' or #value > 15 then return nil end
  if value ~= '0' and not string.match(value, '^%-?[1-9]%d*$') then return nil end
  local number = tonumber(value)
  if number < least then return nil end
  return number
end
local function array(json)
  local decoded, value = pcall(cjson.decode, json)
  if not decoded or type(value) ~= 'table' or (#value == 0 and next(value) ~= nil) then
    return nil
  end
  return value
end

-- the shape of every input, before the first write
if #ARGV ~= 16 then return fail('16 arguments are needed') end
local expected = integer(ARGV[2], -1)
if expected == nil then return fail('expected version must be an integer >= -1') end
if not integer(ARGV[1], 0) then return fail('partition must be an integer >= 0') end
local tracked = integer(ARGV[16], 0)
if tracked == nil then return fail('the running score must be an integer >= 0') end
if not OUTCOME_STATUSES[ARGV[4]] then return fail('unknown outcome status ' .. ARGV[4]) end
local ttl = ARGV[6]
if not integer(ttl, 1) then return fail('TTL must be an integer >= 1') end
local notices_maxlen, journal_maxlen = ARGV[10], ARGV[11]
if not integer(notices_maxlen, 0) or not integer(journal_maxlen, 0) then
  return fail('MAXLEN must be integers >= 0')
end
local events, integration, updates = array(ARGV[7]), array(ARGV[8]), array(ARGV[9])
if not events or not integration or not updates then
  return fail('events, integration events and status updates must be JSON arrays')
end
for _, event in ipairs(events) do
  if type(event) ~= 'table' or #event == 0 or #event % 2 ~= 0 or #event > 2 * MOST_FIELDS then
    return fail('an event must be a list of 1 to ' .. MOST_FIELDS .. ' field/value pairs')
  end
  for _, item in ipairs(event) do
    if type(item) ~= 'string' then return fail('event fields must be strings') end
  end
end
for _, item in ipairs(integration) do
  if type(item) ~= 'string' then return fail('integration events must be JSON strings') end
end
if #KEYS ~= 8 + 2 * #updates then return fail('two keys per status update are needed') end
for _, update in ipairs(updates) do
  if type(update) ~= 'table' or type(update['id']) ~= 'string'
      or type(update['fields']) ~= 'table' or type(update['steps']) ~= 'table' then
    return fail('a status update needs id, fields and steps')
  end
  if update['final'] ~= nil and type(update['final']) ~= 'boolean' then
    return fail('a status update\'s final must be a boolean')
  end
  local track = update['track']
  if track ~= nil and (type(track) ~= 'number' or track < 0 or track ~= math.floor(track)) then
    return fail('a status update\'s track must be an integer >= 0')
  end
  local count = 0
  for field, value in pairs(update['fields']) do
    if type(field) ~= 'string' or type(value) ~= 'string' then
      return fail('status fields must be strings')
    end
    count = count + 1
  end
  if count > MOST_FIELDS or #update['steps'] > MOST_FIELDS then
    return fail('a status update has at most ' .. MOST_FIELDS .. ' fields and steps')
  end
  for _, step in ipairs(update['steps']) do
    if type(step) ~= 'string' then return fail('steps must be JSON strings') end
  end
end

local existing = redis.call('HMGET', KEYS[1], 'status', 'position', 'error')
if existing[1] then
  -- a repeat writes its record's expiry again: a write, so a WAIT after this call covers the
  -- first commit too (kernel/replication.py), and the record lasts as long after a repeat
  redis.call('EXPIRE', KEYS[1], ttl)
  return {'dup', existing[1], existing[2] or '', existing[3] or ''}
end

-- the state the decision was made on must still be the aggregate's
if expected >= 0 then
  local state = redis.call('HMGET', KEYS[6], 'v', 'w')
  if tonumber(state[1] or '0') ~= expected or (state[2] or '') ~= ARGV[13] then
    return {'conflict', state[1] or '0'}
  end
end

-- all checks passed: write.
local last_id = ''
for _, event in ipairs(events) do
  last_id = redis.call('XADD', KEYS[2], '*', unpack(event))
end
local position = ARGV[12]
if last_id ~= '' then
  local own = ARGV[1] .. ':' .. last_id
  if position == '' then position = own else position = position .. ',' .. own end
end
if expected >= 0 and #events > 0 then
  local version = tostring(expected + #events)
  if ARGV[3] ~= '' then
    redis.call('HSET', KEYS[6], 'v', version, 's', ARGV[3], 'w', ARGV[14])
  else
    redis.call('HSET', KEYS[6], 'v', version, 'w', ARGV[14])
  end
end
local traced = ARGV[15] ~= ''
for _, event in ipairs(integration) do
  if traced then
    redis.call('XADD', KEYS[4], '*', 'e', event, TRACE_FIELD, ARGV[15])
  else
    redis.call('XADD', KEYS[4], '*', 'e', event)
  end
end

for i, update in ipairs(updates) do
  local status_key = KEYS[7 + 2 * i]
  local steps_key = KEYS[8 + 2 * i]
  local before = redis.call('HGET', status_key, 'status')
  if not FINAL_STATUSES[before] then
    local flat = {}
    for field, value in pairs(update['fields']) do
      if value == '$position' then value = position end
      flat[#flat + 1] = field
      flat[#flat + 1] = value
    end
    if #flat > 0 then
      redis.call('HSET', status_key, unpack(flat))
      redis.call('EXPIRE', status_key, ttl)
    end
    if #update['steps'] > 0 then
      redis.call('RPUSH', steps_key, unpack(update['steps']))
      redis.call('EXPIRE', steps_key, ttl)
    end
    if (update['track'] or 0) > 0 then
      redis.call('ZADD', KEYS[8], update['track'], update['id'])
    end
    local meta = redis.call('HMGET', status_key, 'sender', 'type', 'accepted_at', 'status',
                            'completed_at', 'error_code', 'queued')
    if traced then
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', notices_maxlen, '*',
                 STATUS_NOTICE.command_id, update['id'], STATUS_NOTICE.sender, meta[1] or '',
                 STATUS_NOTICE.trace, ARGV[15])
    else
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', notices_maxlen, '*',
                 STATUS_NOTICE.command_id, update['id'], STATUS_NOTICE.sender, meta[1] or '')
    end
    if update['final'] then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', journal_maxlen, '*', 'e', cjson.encode({
        command_id = update['id'], sender = meta[1] or '', type = meta[2] or '',
        accepted_at = meta[3] or '', status = meta[4] or '', completed_at = meta[5] or '',
        error_code = meta[6] or ''}))
      if meta[7] == '1' then
        redis.call('HINCRBY', KEYS[7], 'finished', 1)
      end
    end
  end
end

redis.call('HSET', KEYS[1], 'status', ARGV[4], 'position', position, 'error', ARGV[5])
redis.call('EXPIRE', KEYS[1], ttl)
if tracked > 0 then
  redis.call('ZADD', KEYS[8], ARGV[16], ARGV[14])
end
return {'ok', position}
