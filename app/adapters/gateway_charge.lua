-- gateway_charge.lua: the simulated gateway's side of a charge, once per idempotency key.
--
-- KEYS[1] the idempotency key's ledger record (hash: charge_id, approved "1" / "0",
--         amount_cents, and captures = times money was taken, which must stay <= 1; small
--         fields, so Redis keeps the hash compact)
-- KEYS[2] the card token's vault entry (how the card behaves)
--
-- ARGV[1] charge id   ARGV[2] amount in cents, an integer >= 0
-- ARGV[3] seconds the record is kept, an integer > 0
--
-- Returns the charge as JSON: the one recorded before under this key, or the new one.
-- Every input is checked before the first write, so no write can fail on it (an error
-- reply, `gateway_charge: ...`, means nothing was written).

local function fail(message) return redis.error_reply('gateway_charge: ' .. message) end
if #KEYS ~= 2 or #ARGV ~= 3 then return fail('2 keys and 3 arguments are needed') end
local amount, ttl = ARGV[2], ARGV[3]
if not (amount == '0' or (#amount <= 12 and string.match(amount, '^[1-9]%d*$'))) then
  return fail('the amount must be an integer >= 0')
end
if not (#ttl <= 10 and string.match(ttl, '^[1-9]%d*$')) then
  return fail('the TTL must be an integer > 0')
end
if ARGV[1] == '' then return fail('the charge id must not be empty') end

local found = redis.call('HMGET', KEYS[1], 'charge_id', 'approved', 'amount_cents')
if found[1] then
  return cjson.encode({charge_id = found[1], approved = found[2] == '1',
                       amount_cents = tonumber(found[3])})
end
local approved = redis.call('GET', KEYS[2]) == 'approve'
-- all checks passed: write.
redis.call('HSET', KEYS[1], 'charge_id', ARGV[1], 'approved', approved and '1' or '0',
           'amount_cents', amount)
if approved then redis.call('HINCRBY', KEYS[1], 'captures', 1) end
redis.call('EXPIRE', KEYS[1], ttl)
return cjson.encode({charge_id = ARGV[1], approved = approved, amount_cents = tonumber(amount)})
