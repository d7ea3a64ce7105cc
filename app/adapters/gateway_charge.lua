-- gateway_charge.lua: the simulated gateway's side of a charge, once per idempotency key.
--
-- KEYS[1] ledger (hash: idempotency key → charge JSON)   KEYS[2] vault (token → behaviour)
-- KEYS[3] captures (hash: idempotency key → times money was taken; must stay ≤ 1)
--
-- ARGV[1] idempotency key   ARGV[2] card token   ARGV[3] charge id   ARGV[4] amount in cents
--
-- Returns the charge JSON: the one recorded before under this key, or the new one.

local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return existing end
local approved = redis.call('HGET', KEYS[2], ARGV[2]) == 'approve'
local charge = cjson.encode({charge_id = ARGV[3], approved = approved,
                             amount_cents = tonumber(ARGV[4])})
redis.call('HSET', KEYS[1], ARGV[1], charge)
if approved then redis.call('HINCRBY', KEYS[3], ARGV[1], 1) end
return charge
