-- presence.lua: whether documents are listed, have meta and have data, read at one instant.
--
-- KEYS[1] names set ss:{ns}:names, then per document its meta hash and its data hash
-- ARGV the documents' names, in KEYS' order
--
-- Returns, per document, three integers: listed, has meta, has data (1 or 0).

local out = {}
for i = 1, #ARGV do
  out[#out + 1] = redis.call('SISMEMBER', KEYS[1], ARGV[i])
  out[#out + 1] = redis.call('EXISTS', KEYS[2 * i])
  out[#out + 1] = redis.call('EXISTS', KEYS[2 * i + 1])
end
return out
