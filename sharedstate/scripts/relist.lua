-- relist.lua: put documents back in the names set that have meta but lost their names entry.
--
-- KEYS[1] names set ss:{ns}:names, KEYS[2..] the documents' meta hashes
-- ARGV the documents' names, in KEYS' order
--
-- Returns how many were put back (a name whose meta is gone meanwhile is left out).

local added = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    added = added + redis.call('SADD', KEYS[1], ARGV[i])
  end
end
return added
