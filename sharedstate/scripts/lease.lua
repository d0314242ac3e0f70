-- lease.lua: an expiring lock with a fencing token.
--
-- KEYS[1] lock key     holds "<fence>:<owner>" while held
-- KEYS[2] fence key    counter: each acquisition gets a larger token
--
-- ARGV[1] op: acquire | renew | release
-- ARGV[2] owner (random per holder)
-- ARGV[3] time to live, milliseconds (acquire, renew)
--
-- Returns: acquire -> the fencing token, or 0 if the lock is held by someone else;
--          renew / release -> 1 if this owner held it, else 0.

local op = ARGV[1]
local held = redis.call('GET', KEYS[1])
local mine = held and string.match(held, '^%d+:(.*)$') == ARGV[2]
if op == 'acquire' then
  if held then return 0 end
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], fence .. ':' .. ARGV[2], 'PX', ARGV[3])
  return fence
elseif op == 'renew' then
  if not mine then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
elseif op == 'release' then
  if not mine then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
return redis.error_reply('unknown lease op ' .. op)
