-- gateway_charge.lua: the simulated gateway's side of a charge, once per idempotency key.
--
-- KEYS[1] the idempotency key's ledger record (hash: charge_id, approved "1" / "0",
--         amount_cents, and captures = times money was taken, which must stay <= 1; small
--         fields, so Redis keeps the hash compact)
-- KEYS[2] the card token's vault entry (how the card behaves)
--
-- ARGV[1] charge id   ARGV[2] amount in cents   ARGV[3] seconds the record is kept
--
-- Returns the charge as JSON: the one recorded before under this key, or the new one.

local amount, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
if amount == nil or ttl == nil or ttl <= 0 then
  return redis.error_reply('gateway_charge: amount and TTL must be numbers (TTL positive)')
end
local found = redis.call('HMGET', KEYS[1], 'charge_id', 'approved', 'amount_cents')
if found[1] then
  return cjson.encode({charge_id = found[1], approved = found[2] == '1',
                       amount_cents = tonumber(found[3])})
end
local approved = redis.call('GET', KEYS[2]) == 'approve'
redis.call('HSET', KEYS[1], 'charge_id', ARGV[1], 'approved', approved and '1' or '0',
           'amount_cents', amount)
if approved then redis.call('HINCRBY', KEYS[1], 'captures', 1) end
redis.call('EXPIRE', KEYS[1], ttl)
return cjson.encode({charge_id = ARGV[1], approved = approved, amount_cents = amount})
