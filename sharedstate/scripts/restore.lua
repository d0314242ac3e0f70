-- restore.lua: put back a batch of documents from a backup in one call, by the restore rule.
-- For each document it does what write.lua does (op 'restore', or 'delete' when a forced
-- restore removes a document the backup does not hold), with the reads and bookkeeping that
-- do not depend on the document done once per batch.
--
-- KEYS[1] names set        ss:{ns}:names
-- KEYS[2] feed stream      ss:{ns}:feed
-- KEYS[3] tombstones hash  ss:{ns}:tomb
-- KEYS[4] version floor    ss:{ns}:floor
-- KEYS[5] feed bytes       ss:{ns}:feedbytes
-- KEYS[6] restore lease    ss:{ns}:sys:lock:restore
-- KEYS[7..] four per document, in ARGV's order: data hash, meta hash, history list, staging hash
--
-- ARGV[1] writer, ARGV[2] feed length, ARGV[3] history length,
-- ARGV[4] largest payload kept in a feed entry, bytes, ARGV[5] bytes feed and histories may hold,
-- ARGV[6] seconds a deleted document's history is kept,
-- ARGV[7] mode: 'fill' writes a document only where Redis has no copy or an older one (a lower
--         version than the backup's) and never where it was deleted after the backup;
--         'force' writes (and deletes) whatever Redis holds
-- ARGV[8] the value of the lease this restore holds: if KEYS[6] holds anything else the lease
--         was lost (the restore was paused past it) and nothing is written
-- ARGV[9..] per document: name, backup version, kind ('o' | 'v' | 'x': delete), size, payload,
--           staged ('1': the fields wait in the staging hash), field count n, n field/value pairs
--
-- Returns {'lease'} when the lease was lost, else {time, then per document: status, version,
-- feed id, previous version}; status 'w' written, 'k' kept (Redis has the backup's version or a
-- newer one), 'g' gone (deleted after the backup), 'x' deleted, 'n' nothing to delete.

local unpack = unpack or table.unpack
local function fmt(n) return string.format('%d', n) end
--#include feed

if redis.call('GET', KEYS[6]) ~= ARGV[8] then return {'lease'} end

local writer = ARGV[1]
local maxlen = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local payload_limit = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local history_ttl = ARGV[6]
local fill = ARGV[7] == 'fill'

local floor = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
local now = redis.call('TIME')
local t = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])

-- one look at the tombstones for the whole batch
local FIRST = 9
local names = {}
local i = FIRST
while i <= #ARGV do
  names[#names + 1] = ARGV[i]
  i = i + 7 + 2 * tonumber(ARGV[i + 6])
end
if #names == 0 then return {t} end
local tombs = redis.call('HMGET', KEYS[3], unpack(names))

local out = {t}
local present, absent = {}, {}
local added, newest, changes = 0, nil, 0  -- the changes recorded, kept in bounds once at the end
local k = 7
i = FIRST
for d = 1, #names do
  local name, backup, kind, size, payload = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local staged = ARGV[i + 5] == '1'
  local first = i + 7
  local last = first + 2 * tonumber(ARGV[i + 6]) - 1
  local dkey, mkey, hkey, skey = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]

  local cur = tonumber(redis.call('HGET', mkey, 'v') or '0') or 0
  local tomb = tonumber(tombs[d] or '0') or 0
  local status = 'w'
  if kind == 'x' then
    if cur == 0 then status = 'n' else status = 'x' end
  elseif fill and cur >= backup then
    status = 'k'
  elseif fill and cur == 0 and tomb >= backup then
    status = 'g'
  end

  if status == 'w' or status == 'x' then
    -- a fresh version, above every one handed out before (see write.lua)
    local base = math.max(cur, tomb, floor, backup)
    local ver = fmt(math.max(base + 1, clock))
    local op = 'restore'
    if status == 'x' then
      op = 'delete'
      payload = ''
      redis.call('DEL', dkey, mkey)
      redis.call('HSET', KEYS[3], name, ver)
      absent[#absent + 1] = name
    else
      redis.call('UNLINK', dkey)  -- also data left without meta by a partial loss: never content
      if staged then
        redis.call('RENAME', skey, dkey)
      else
        -- chunks: unpack() of very many values overflows Lua's C stack
        for j = first, last, 1000 do
          redis.call('HSET', dkey, unpack(ARGV, j, math.min(j + 999, last)))
        end
      end
      redis.call('HSET', mkey, 'v', ver, 't', t, 'w', writer, 'k', kind, 's', size)
      present[#present + 1] = name
    end
    local omitted = '0'
    if #payload > payload_limit or (staged and status == 'w') then
      payload = ''
      omitted = '1'
    end
    local id, length, cost = add_change(KEYS[2], hkey, limit,
      {'n', name, 'v', ver, 'o', op, 'w', writer, 't', t, 'f', payload, 'x', omitted, 'r', ''})
    added, newest, changes = added + cost, id, changes + 1
    if status == 'x' then
      redis.call('EXPIRE', hkey, history_ttl)
    elseif cur == 0 and length > 1 then
      redis.call('PERSIST', hkey)  -- a deleted document's history expires; once back it stays
    end
    out[#out + 1] = status
    out[#out + 1] = ver
    out[#out + 1] = id
    out[#out + 1] = fmt(cur)
  else
    if staged then redis.call('UNLINK', skey) end
    if status == 'k' then present[#present + 1] = name end  -- a names entry lost on its own comes back
    out[#out + 1] = status
    out[#out + 1] = fmt(cur)
    out[#out + 1] = ''
    out[#out + 1] = fmt(cur)
  end
  i = last + 1
  k = k + 4
end

if changes > 0 then keep_in_bounds(KEYS[2], KEYS[5], maxlen, budget, added, newest, changes) end
for j = 1, #present, 1000 do
  local chunk = {unpack(present, j, math.min(j + 999, #present))}
  redis.call('SADD', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[3], unpack(chunk))
end
for j = 1, #absent, 1000 do
  redis.call('SREM', KEYS[1], unpack(absent, j, math.min(j + 999, #absent)))
end
return out
