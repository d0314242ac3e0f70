-- versions.lua: the versions Redis holds of a batch of documents, for a restore's plan.
--
-- KEYS[1] tombstones hash ss:{ns}:tomb, KEYS[2..] the documents' meta hashes
-- ARGV the documents' names, in KEYS' order
--
-- Returns the versions ('' none), then the versions of their deletes ('' none).

local out = {}
for k = 2, #KEYS do out[#out + 1] = redis.call('HGET', KEYS[k], 'v') or '' end
local tombs = redis.call('HMGET', KEYS[1], unpack(ARGV))
for d = 1, #ARGV do out[#out + 1] = tombs[d] or '' end
return out
