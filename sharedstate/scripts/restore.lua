-- restore.lua: put back a batch of documents from a snapshot in one call. For each document
-- it does what write.lua does for op 'restore' (no expected version, no write id), with the
-- reads and bookkeeping that do not depend on the document done once per batch.
--
-- KEYS[1] names set        ss:{ns}:names
-- KEYS[2] feed stream      ss:{ns}:feed
-- KEYS[3] tombstones hash  ss:{ns}:tomb
-- KEYS[4] version floor    ss:{ns}:floor
-- KEYS[5] feed bytes       ss:{ns}:feedbytes
-- KEYS[6..] three per document, in ARGV's order: data hash, meta hash, history list
--
-- ARGV[1] writer, ARGV[2] feed length, ARGV[3] history length,
-- ARGV[4] largest payload kept in a feed entry, bytes, ARGV[5] bytes feed and histories may hold
-- ARGV[6..] per document: name, kind ('o'|'v'), size, payload, field count n, n field/value pairs
--
-- Returns {time, then per document: version, feed id, previous version ('0': none)}.

local unpack = unpack or table.unpack
local function fmt(n) return string.format('%d', n) end
--#include feed

local writer = ARGV[1]
local maxlen = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local payload_limit = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])

local floor = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
local now = redis.call('TIME')
local t = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))

-- one look at the tombstones for the whole batch
local names = {}
local i = 6
while i <= #ARGV do
  names[#names + 1] = ARGV[i]
  i = i + 5 + 2 * tonumber(ARGV[i + 4])
end
if #names == 0 then return {t} end
local tombs = redis.call('HMGET', KEYS[3], unpack(names))

local out = {t}
local k = 6
i = 6
for d = 1, #names do
  local name, kind, size, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local first = i + 5
  local last = first + 2 * tonumber(ARGV[i + 4]) - 1
  local dkey, mkey, hkey = KEYS[k], KEYS[k + 1], KEYS[k + 2]

  -- versions never go back: not after a delete (tombstone), not after a restore (floor)
  local cur = tonumber(redis.call('HGET', mkey, 'v') or '0') or 0
  local base = cur
  if cur == 0 then
    base = tonumber(tombs[d] or '0') or 0
  else
    redis.call('DEL', dkey)
  end
  if floor > base then base = floor end
  local ver = fmt(base + 1)

  -- chunks: unpack() of very many values overflows Lua's C stack
  for j = first, last, 1000 do
    redis.call('HSET', dkey, unpack(ARGV, j, math.min(j + 999, last)))
  end
  redis.call('HSET', mkey, 'v', ver, 't', t, 'w', writer, 'k', kind, 's', size)

  local omitted = '0'
  if #payload > payload_limit then
    payload = ''
    omitted = '1'
  end
  local id, length = record_change(KEYS[2], KEYS[5], hkey, maxlen, budget, limit,
    {'n', name, 'v', ver, 'o', 'restore', 'w', writer, 't', t, 'f', payload, 'x', omitted, 'r', ''})
  -- a deleted document's history expires; once the document is back it stays
  if cur == 0 and length > 1 then redis.call('PERSIST', hkey) end

  out[#out + 1] = ver
  out[#out + 1] = id
  out[#out + 1] = fmt(cur)
  i = last + 1
  k = k + 3
end

for j = 1, #names, 1000 do
  local chunk = {unpack(names, j, math.min(j + 999, #names))}
  redis.call('SADD', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[3], unpack(chunk))
end
return out
