-- floor.lua: raise a namespace's version floor, never lower it.
--
-- KEYS[1] floor key   ss:{ns}:floor
-- ARGV[1] the floor wanted
--
-- Returns the floor now in force.

local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local wanted = tonumber(ARGV[1])
if wanted > current then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return string.format('%d', current)
