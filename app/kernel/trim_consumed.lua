-- trim_consumed.lua: trim a stream up to what every one of its consumer groups is done with.
--
-- KEYS[1] the stream
-- ARGV[1] an entry id (ms-seq): entries from it on are kept even when every group is done with
--         them (a retention, for readers outside the groups); "" keeps nothing more
--
-- An entry a group still needs — not yet delivered to it, or delivered and not acknowledged —
-- is never trimmed; neither is anything of a stream without groups (a group made later reads
-- it from its start). Returns how many entries were trimmed. Every input is checked before
-- the first write (an error reply, `trim_consumed: ...`, means nothing was written).

local function parse(id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
  if ms == nil then return nil end
  return {ms = ms, seq = seq, n_ms = tonumber(ms), n_seq = tonumber(seq)}
end

local function before(a, b)
  return a.n_ms < b.n_ms or (a.n_ms == b.n_ms and a.n_seq < b.n_seq)
end

if #KEYS ~= 1 or #ARGV ~= 1 then
  return redis.error_reply('trim_consumed: 1 key and 1 argument are needed')
end
local keep = nil
if ARGV[1] ~= '' then
  keep = parse(ARGV[1])
  if keep == nil then return redis.error_reply('trim_consumed: ARGV[1] must be an entry id') end
end

local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
if groups['err'] then
  if string.find(groups['err'], 'no such key', 1, true) then return 0 end
  return groups
end
if #groups == 0 then return 0 end

local lowest = nil -- the first entry some group still needs
for _, group in ipairs(groups) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local needed
  if tonumber(info['pending']) > 0 then
    needed = parse(redis.call('XPENDING', KEYS[1], info['name'])[2])
  else
    local delivered = parse(info['last-delivered-id'])
    needed = {ms = delivered.ms, seq = tostring(delivered.n_seq + 1),
              n_ms = delivered.n_ms, n_seq = delivered.n_seq + 1}
  end
  if lowest == nil or before(needed, lowest) then lowest = needed end
end
if keep ~= nil and before(keep, lowest) then lowest = keep end
return redis.call('XTRIM', KEYS[1], 'MINID', lowest.ms .. '-' .. lowest.seq)
