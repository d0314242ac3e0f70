-- read.lua: a document's meta and data from one instant, in one round trip.
--
-- KEYS[1] data hash   ss:{ns}:d:<name>
-- KEYS[2] meta hash   ss:{ns}:m:<name>
--
-- ARGV[1] what: 'meta' | 'doc' (all fields) | 'docif' (all fields unless the version is ARGV[2])
--               | 'field' (ARGV[2]) | 'len' | 'keys'
--
-- Returns {} when the document does not exist, else {version, time, writer, kind, size, payload}:
-- payload is nothing / HGETALL / {HGET} / {HLEN} / HKEYS of the data hash ('meta', 'doc' and
-- 'docif' read any kind; the others need kind 'o' and answer 0 as payload otherwise). 'docif'
-- answers payload 1 when the version is ARGV[2]: the caller's copy is current.

local meta = redis.call('HMGET', KEYS[2], 'v', 't', 'w', 'k', 's')
if not meta[1] then return {} end
local what = ARGV[1]
local payload = 0
if what == 'meta' then
  payload = {}
elseif what == 'doc' or (what == 'docif' and meta[1] ~= ARGV[2]) then
  payload = redis.call('HGETALL', KEYS[1])
elseif what == 'docif' then
  payload = 1
elseif meta[4] == 'o' then
  if what == 'field' then
    local value = redis.call('HGET', KEYS[1], ARGV[2])
    if value then payload = {value} else payload = {} end
  elseif what == 'len' then
    payload = {redis.call('HLEN', KEYS[1])}
  elseif what == 'keys' then
    payload = redis.call('HKEYS', KEYS[1])
  end
end
return {meta[1], meta[2], meta[3], meta[4], meta[5] or '0', payload}
