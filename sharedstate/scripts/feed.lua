-- feed.lua: included by write.lua and restore.lua (see _scripts.py). Records one change in the
-- namespace's change feed and the document's history, keeping both within the namespace's
-- byte budget and the feed's length.
--
-- A feed entry holds the change (n name, v version, o op, w writer, t time, f payload, x omitted,
-- r removed field names). A history record is only the feed id of its entry: the payload is
-- kept once. The feed's oldest entries go first (with their history records) whenever the
-- feed holds more than `budget` bytes or `maxlen` entries; the counter key keeps the bytes.

local function mp_be(n, bytes)
  local out = {}
  for b = bytes, 1, -1 do
    out[b] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(out)
end

-- msgpack headers, the same bytes Python's msgpack writes
local function mp_str(s)
  local n = #s
  if n < 32 then return string.char(0xa0 + n) .. s end
  if n < 256 then return '\217' .. string.char(n) .. s end
  if n < 65536 then return '\218' .. mp_be(n, 2) .. s end
  return '\219' .. mp_be(n, 4) .. s
end
local function mp_count(n, fix, h16, h32)
  if n < 16 then return string.char(fix + n) end
  if n < 65536 then return h16 .. mp_be(n, 2) end
  return h32 .. mp_be(n, 4)
end
local function mp_map(n) return mp_count(n, 0x80, '\222', '\223') end
local function mp_array(n) return mp_count(n, 0x90, '\220', '\221') end

-- msgpack of {field: value} for the pairs of `list` from index `from` (values are msgpack)
local function pack_fields(list, from)
  local parts = {mp_map((#list - from + 1) / 2)}
  for i = from, #list, 2 do
    parts[#parts + 1] = mp_str(list[i])
    parts[#parts + 1] = list[i + 1]
  end
  return table.concat(parts)
end
local function pack_names(names)
  local parts = {mp_array(#names)}
  for i = 1, #names do parts[#parts + 1] = mp_str(names[i]) end
  return table.concat(parts)
end

-- What a change costs Redis, roughly: its bytes, an eighth more for the allocator's rounding
-- of large entries, and the stream's and the history list's own bytes per change.
local ENTRY_OVERHEAD = 64
local function entry_cost(flat)
  local c = 0
  for i = 1, #flat do c = c + #flat[i] end
  return math.ceil(c * 9 / 8) + ENTRY_OVERHEAD
end

local function next_id(id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  return ms .. '-' .. string.format('%d', tonumber(seq) + 1)
end

-- Trimming is done in one pass once the feed is over its length or budget, down to a little
-- below both (1/64 of each), so its per-call costs (reading entries into Lua, XTRIM) are paid
-- once per many writes, not on every one.
local function low_water(limit)
  return limit - math.min(math.floor(limit / 64), 1000)
end

-- Records one change: its feed entry and its history record (the entry's id). Returns the id,
-- the length of the document's history, and what the change costs (see keep_in_bounds).
local function add_change(feed, hkey, hlimit, entry)
  local id = redis.call('XADD', feed, '*', unpack(entry))
  local length_h = redis.call('LPUSH', hkey, id)
  if length_h > hlimit then redis.call('LTRIM', hkey, 0, hlimit - 1) end
  return id, length_h, entry_cost(entry)
end

-- After `count` changes costing `added` in all, the newest of them `newest`: count them in the
-- counter and trim the oldest changes, with their history records, while the feed holds more
-- than `budget` bytes or `maxlen` entries (never `newest` itself). Called once per script run.
local function keep_in_bounds(feed, counter, maxlen, budget, added, newest, count)
  local total = redis.call('INCRBY', counter, added)
  local length = redis.call('XLEN', feed)
  local recount = total == added and length > count  -- the counter was lost: count what the feed holds
  if recount then
    total = 0
    for _, e in ipairs(redis.call('XRANGE', feed, '-', '+')) do total = total + entry_cost(e[2]) end
  end
  local trimmed = false
  if total > budget or length > maxlen then
    local base = string.sub(feed, 1, #feed - 4)  -- 'ss:{ns}:' of 'ss:{ns}:feed'
    local bytes_to, length_to = low_water(budget), low_water(maxlen)
    while total > bytes_to or length > length_to do
      local want = 64
      if total <= bytes_to then want = length - length_to end
      local last = nil
      for _, e in ipairs(redis.call('XRANGE', feed, '-', '+', 'COUNT', want)) do
        if e[1] == newest or (total <= bytes_to and length <= length_to) then break end
        total = total - entry_cost(e[2])
        length = length - 1
        last = e[1]
        -- field 'n' comes first: the document's history, whose oldest record this is
        redis.call('LREM', base .. 'h:' .. e[2][2], -1, last)
      end
      if not last then break end
      redis.call('XTRIM', feed, 'MINID', next_id(last))
      trimmed = true
    end
  end
  if recount or trimmed then redis.call('SET', counter, string.format('%d', total)) end
end
