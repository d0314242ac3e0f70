-- history.lua: a document's last changes, newest first, in one round trip.
--
-- KEYS[1] history list  ss:{ns}:h:<name>   feed ids, newest first
-- KEYS[2] feed stream   ss:{ns}:feed
--
-- ARGV[1] most changes to answer
--
-- Returns the feed entries {id, {field, value, ...}} the history names; a record whose entry
-- the feed no longer holds (Redis lost it) is left out.

local out = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
  if string.match(id, '^%d+%-%d+$') then
    local entry = redis.call('XRANGE', KEYS[2], id, id)
    if entry[1] then out[#out + 1] = entry[1] end
  end
end
return out
