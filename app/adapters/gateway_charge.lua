-- gateway_charge.lua: the simulated gateway's side of a charge, once per idempotency key.
--
-- KEYS[1] ledger (hash: idempotency key → charge JSON)   KEYS[2] vault (token → behaviour)
-- KEYS[3] captures (hash: idempotency key → times money was taken; must stay ≤ 1)
--
-- ARGV[1] idempotency key   ARGV[2] card token   ARGV[3] charge id
-- ARGV[4] amount in cents, an integer >= 0
--
-- Returns the charge JSON: the one recorded before under this key, or the new one.
-- Every input is checked before the first write, so no write can fail on it (an error
-- reply, `gateway_charge: ...`, means nothing was written).

local function fail(message) return redis.error_reply('gateway_charge: ' .. message) end
if #KEYS ~= 3 or #ARGV ~= 4 then return fail('3 keys and 4 arguments are needed') end
local amount = ARGV[4]
if not (amount == '0' or (#amount <= 12 and string.match(amount, '^[1-9]%d*$'))) then
  return fail('the amount must be an integer >= 0')
end

local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return existing end
local approved = redis.call('HGET', KEYS[2], ARGV[2]) == 'approve'
local charge = cjson.encode({charge_id = ARGV[3], approved = approved,
                             amount_cents = tonumber(amount)})
-- all checks passed: write.
redis.call('HSET', KEYS[1], ARGV[1], charge)
if approved then redis.call('HINCRBY', KEYS[3], ARGV[1], 1) end
return charge
