-- dump.lua: a batch of documents for a snapshot, each with its meta and data from one instant.
--
-- KEYS: two per document: data hash ss:{ns}:d:<name>, meta hash ss:{ns}:m:<name>
--
-- Returns one entry per document: {} when it does not exist (deleted since it was listed),
-- else {version, time, writer, kind, HGETALL of the data hash, size in meta}.

local out = {}
for k = 1, #KEYS, 2 do
  local meta = redis.call('HMGET', KEYS[k + 1], 'v', 't', 'w', 'k', 's')
  if meta[1] then
    out[#out + 1] = {meta[1], meta[2], meta[3], meta[4], redis.call('HGETALL', KEYS[k]), meta[5] or '0'}
  else
    out[#out + 1] = {}
  end
end
return out
