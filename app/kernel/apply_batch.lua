-- apply_batch.lua: a projection batch's read-model writes and its checkpoint, atomically, if
-- the checkpoint is still the one the batch was read after (else nothing: another owner
-- moved it, and this one must stop). Runs on the read-model server, never on a Cluster: the
-- keys the writes touch are not declared.
--
-- KEYS[1] the projection partition's checkpoint
--
-- ARGV[1] the checkpoint the batch expects ("" when there was none)
-- ARGV[2] the checkpoint to set ("" to leave it: dead letters being replayed behind it)
-- ARGV[3] JSON array of commands, each an array of strings (name, then arguments)
--
-- Returns 1 when applied, 0 when the checkpoint had moved (nothing written).

if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then
  return 0
end
for _, command in ipairs(cjson.decode(ARGV[3])) do
  redis.call(unpack(command))
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
