-- write.lua: every write to a document as one atomic step.
--
-- KEYS[1] data hash        ss:{ns}:d:<name>   field -> msgpack value
-- KEYS[2] meta hash        ss:{ns}:m:<name>   v version, t time, w writer, k kind, s size
-- KEYS[3] names set        ss:{ns}:names
-- KEYS[4] feed stream      ss:{ns}:feed
-- KEYS[5] history list     ss:{ns}:h:<name>   newest first: feed ids (see feed.lua)
-- KEYS[6] tombstones hash  ss:{ns}:tomb       name -> version of the delete
-- KEYS[7] version floor    ss:{ns}:floor      raised by a restore (read for new documents)
-- KEYS[8] write id         ss:{ns}:w:<id>     result of this write, for re-sends
-- KEYS[9] feed bytes       ss:{ns}:feedbytes  bytes the feed and histories hold
-- KEYS[10] staged fields   ss:{ns}:sys:put:<id> (op staged only)
--
-- ARGV[1]  op: put | merge | set_field | delete_field | delete | restore; or staged: a put of
--          a very wide object whose fields the client wrote to KEYS[10] beforehand, chunk by
--          chunk (one script writing them all held Redis for a second); ARGV[14] is its size
-- ARGV[2]  expected version: '' none, '0' must not exist, else that version
-- ARGV[3]  document name
-- ARGV[4]  writer
-- ARGV[5]  kind written by put/restore: 'o' object, 'v' plain value; '' otherwise
-- ARGV[6]  largest document size allowed, bytes
-- ARGV[7]  feed length, ARGV[8] history length
-- ARGV[9]  seconds a deleted document's history is kept
-- ARGV[10] seconds the write id is kept (0: not recorded, for bulk restores)
-- ARGV[11] largest payload kept in a feed entry, bytes
-- ARGV[12] bytes the feed and histories of the namespace may hold
-- ARGV[13] r: number of fields a merge also removes, ARGV[14 .. 13 + r] their names
-- ARGV[14 + r ..] field, value pairs (put/restore/merge/set_field) or field names (delete_field)
--
-- The change recorded carries what the write changed: for a put of an object over an object
-- only the fields whose bytes changed and the names of the removed ones; for merge and
-- set_field the fields set (and removed); for restore and a put of a plain value all of it.
--
-- Returns {status, version, time, feed id, previous version}:
--   ok        applied
--   dup       this write id was applied before: its first result (previous version '')
--   conflict  version = the actual version, nothing written
--   noop      nothing to delete, version = the current one
--   notobject the document is a plain value, field writes need an object
--   toolarge  version = the size the document would have had

local unpack = unpack or table.unpack
local function fmt(n) return string.format('%d', n) end
--#include feed

local staged = ARGV[1] == 'staged'
local function refuse(result)  -- an answer that writes nothing: the staged fields go too
  if staged then redis.call('UNLINK', KEYS[10]) end
  return result
end

local remember = tonumber(ARGV[10]) > 0
if remember then
  local done = redis.call('GET', KEYS[8])
  if done then
    local v, t, id = string.match(done, '^(%d+)|([^|]*)|(.*)$')
    return refuse({'dup', v, t, id, ''})
  end
end

local op = ARGV[1]
if staged then op = 'put' end
local nremove = tonumber(ARGV[13])
local FIRST = 14 + nremove
local meta = redis.call('HMGET', KEYS[2], 'v', 'k', 's')
local cur = tonumber(meta[1]) or 0
local oldkind = meta[2]
local kind = oldkind
local size = tonumber(meta[3]) or 0

if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= cur then
  return refuse({'conflict', fmt(cur)})
end
if staged and redis.call('EXISTS', KEYS[10]) == 0 then
  return {'stagelost', fmt(cur)}  -- expired or lost before this call: nothing written
end

local whole = (op == 'put' or op == 'restore')
if op == 'delete' and cur == 0 then
  return {'noop', '0'}
end
if not whole and op ~= 'delete' then
  if cur > 0 and kind ~= 'o' then return {'notobject', fmt(cur)} end
  kind = 'o'
end
-- without meta the document does not exist: data left by a partial loss is not its content
if cur == 0 and op ~= 'delete' then redis.call('DEL', KEYS[1]) end

-- the size after this write, checked before anything is written
local removed = {}
local function removing(from, to)  -- fields ARGV[from..to] that exist leave the size
  for i = from, to do
    local old = redis.call('HSTRLEN', KEYS[1], ARGV[i])
    if old > 0 then
      size = size - old - #ARGV[i]
      removed[#removed + 1] = ARGV[i]
    end
  end
end
if whole then
  kind = ARGV[5]
  size = 0
  if staged then
    size = tonumber(ARGV[FIRST])
  else
    for i = FIRST, #ARGV, 2 do size = size + #ARGV[i] + #ARGV[i + 1] end
  end
  if kind == 'v' then size = #ARGV[FIRST + 1] end
elseif op == 'merge' or op == 'set_field' then
  for i = FIRST, #ARGV, 2 do
    local old = redis.call('HSTRLEN', KEYS[1], ARGV[i])
    if old > 0 then size = size - old - #ARGV[i] end
    size = size + #ARGV[i] + #ARGV[i + 1]
  end
  removing(14, FIRST - 1)
elseif op == 'delete_field' then
  removing(FIRST, #ARGV)
  if #removed == 0 then return {'noop', fmt(cur)} end
end
if size > tonumber(ARGV[6]) then
  return refuse({'toolarge', fmt(size)})
end

-- Versions come from a hybrid clock: the server's time in microseconds, or one more than the
-- last version when the clock has not moved past it (or stepped back). So a loss of any key
-- never lets a version be handed out twice. A new document also stays above its tombstone
-- and the floor a restore set, which only matter if the clock stepped back across a loss.
local now = redis.call('TIME')
local t = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
local base = cur
if cur == 0 then
  base = tonumber(redis.call('HGET', KEYS[6], ARGV[3]) or '0') or 0
  local floor = tonumber(redis.call('GET', KEYS[7]) or '0') or 0
  if floor > base then base = floor end
end
local ver = math.max(base + 1, tonumber(now[1]) * 1000000 + tonumber(now[2]))

-- chunks: unpack() of very many values overflows Lua's C stack
local function hset(list, from)
  for i = from, #list, 1000 do
    redis.call('HSET', KEYS[1], unpack(list, i, math.min(i + 999, #list)))
  end
end

local payload = ''
local changed = nil  -- field/value pairs the payload holds, when it is built from pairs
if op == 'delete' then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[3], ARGV[3])
  redis.call('HSET', KEYS[6], ARGV[3], fmt(ver))
else
  if staged then
    redis.call('UNLINK', KEYS[1])  -- freed off the main thread, however many fields it had
    redis.call('RENAME', KEYS[10], KEYS[1])
  elseif op == 'put' and kind == 'o' and oldkind == 'o' then
    -- write (and record) only what differs from the document as it is
    local old = {}
    local flat = redis.call('HGETALL', KEYS[1])
    for i = 1, #flat, 2 do old[flat[i]] = flat[i + 1] end
    changed = {}
    for i = FIRST, #ARGV, 2 do
      if old[ARGV[i]] ~= ARGV[i + 1] then
        changed[#changed + 1] = ARGV[i]
        changed[#changed + 1] = ARGV[i + 1]
      end
      old[ARGV[i]] = nil
    end
    for field in pairs(old) do removed[#removed + 1] = field end
    table.sort(removed)
    for i = 1, #removed, 1000 do
      redis.call('HDEL', KEYS[1], unpack(removed, i, math.min(i + 999, #removed)))
    end
    hset(changed, 1)
  elseif whole then
    redis.call('DEL', KEYS[1])
    hset(ARGV, FIRST)
    if kind == 'v' then payload = ARGV[FIRST + 1] end
  else
    for i = 1, #removed, 1000 do
      redis.call('HDEL', KEYS[1], unpack(removed, i, math.min(i + 999, #removed)))
    end
    if op ~= 'delete_field' then hset(ARGV, FIRST) end
  end
  redis.call('HSET', KEYS[2], 'v', fmt(ver), 't', t, 'w', ARGV[4], 'k', kind, 's', fmt(size))
  if cur == 0 then
    redis.call('SADD', KEYS[3], ARGV[3])
    redis.call('HDEL', KEYS[6], ARGV[3])
  end
end

if changed then
  payload = pack_fields(changed, 1)
elseif staged then
  payload = ''
elseif kind == 'o' and op ~= 'delete' and op ~= 'delete_field' then
  payload = pack_fields(ARGV, FIRST)
end
local gone = ''
if #removed > 0 then gone = pack_names(removed) end

-- feed and history carry the change, unless larger than ARGV[11]
local omitted = '0'
if staged or #payload + #gone > tonumber(ARGV[11]) then
  payload = ''
  gone = ''
  omitted = '1'
end
local id, hlen, cost = add_change(KEYS[4], KEYS[5], tonumber(ARGV[8]), {'n', ARGV[3], 'v', fmt(ver),
  'o', op, 'w', ARGV[4], 't', t, 'f', payload, 'x', omitted, 'r', gone})
keep_in_bounds(KEYS[4], KEYS[9], tonumber(ARGV[7]), tonumber(ARGV[12]), cost, id, 1)
if op == 'delete' then
  redis.call('EXPIRE', KEYS[5], ARGV[9])
elseif cur == 0 and hlen > 1 then
  redis.call('PERSIST', KEYS[5])
end
if remember then
  redis.call('SET', KEYS[8], fmt(ver) .. '|' .. t .. '|' .. id, 'EX', ARGV[10])
end
return {'ok', fmt(ver), t, id, fmt(cur)}
