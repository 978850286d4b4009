"""The Lua scripts of the Redis store: each one runs atomically on one hash slot.

Every script gets a shared prelude of small functions. Lua scripts are not transactional on error,
so every script validates before its first write, or saves what it changes and restores it before
returning a refusal. Refusals are status tables (`{'gone'}`, `{'big', size}` ...), never errors:
an error reply would mean a bug or a server fault, and becomes `StoreUnavailable`.

Meta hash fields: id user client ip ua created seen idle abs exp persist revoked ver size ep.
Absent fields mean None; `exp` is the effective deadline, `size` the data size as
`core.data.data_size` counts it (UTF-8 bytes of each key and its JSON text), `ep` the user's
epoch when the session was created (absent = 0).

The user's mark `hh:m:{TAG}<user>` (fields: ep, blk, at; no TTL) is derived inside the scripts
from a session's meta key and owner, and a user's other sessions from the index under a cap:
both share the session's hash slot by construction (TAG = routing_tag(user)), so a load stays
one script and one round trip.

(Over 300 lines because it holds every script of the Redis store with their shared prelude: the
scripts are one program that must agree on the fields above, so they are read together.)
"""

from __future__ import annotations

PRELUDE = r"""
local function ttl(exp, now)
  local t = math.ceil(exp - now)
  if t < 1 then t = 1 end
  return t
end

-- the user's mark, from a meta key (hh:s:{TAG}HEX) and the session's owner
local function mark_of(meta, user)
  return 'hh:m:{' .. string.sub(meta, 7, 10) .. '}' .. user
end

-- a user session counts only while its epoch is its user's and the user is not blocked
local function fresh(meta)
  local f = redis.call('HMGET', meta, 'user', 'ep')
  if not f[1] then return true end
  local m = redis.call('HMGET', mark_of(meta, f[1]), 'ep', 'blk')
  if m[2] then return false end
  return (tonumber(f[2]) or 0) == (tonumber(m[1]) or 0)
end

-- the deadline of a live session, or nil (absent, tombstone, expired, stale or corrupt: a
-- script must not stop half-way on a field it cannot read)
local function live(meta, now)
  local m = redis.call('HMGET', meta, 'revoked', 'exp', 'ver')
  if m[1] or not m[2] then return nil end
  local exp = tonumber(m[2])
  if exp == nil or now >= exp or not m[3] or not string.match(m[3], '^%d+$') then return nil end
  if not fresh(meta) then return nil end
  return exp
end

-- never shortens: the index lives at least as long as the longest of its sessions
local function extend(key, t)
  if redis.call('TTL', key) < t then redis.call('EXPIRE', key, t) end
end

-- HSET / HDEL in chunks: unpack() has a limit of a few thousand values
local function hset(key, a, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call('HSET', key, unpack(a, i, j))
    i = j + 1
  end
end
local function hdel(key, a, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call('HDEL', key, unpack(a, i, j))
    i = j + 1
  end
end

-- a JSON integer: what HINCRBY may touch
local function is_int(v)
  return string.match(v, '^%-?%d+$') ~= nil and string.match(v, '^%-?0%d') == nil
end

-- `stamp` is the caller's text of `now`: Lua's tostring() would round it
local function tombstone(meta, data, idx, sid, now, stamp, exp)
  redis.call('HSET', meta, 'revoked', stamp, 'size', 0)
  redis.call('HINCRBY', meta, 'ver', 1)
  redis.call('DEL', data)
  redis.call('EXPIRE', meta, ttl(exp, now))
  if idx then redis.call('HDEL', idx, sid) end
end

-- a[a0..]: ttl, index ttl, id, session key, n, n meta values (pairs), then data pairs.
-- A user's session (idx given) is stamped with the epoch of the user's mark.
local function create(meta, data, idx, mark, a, a0)
  if redis.call('EXISTS', meta) == 1 then return false end
  redis.call('DEL', data)
  local n = tonumber(a[a0 + 4])
  local m0 = a0 + 5
  hset(meta, a, m0, m0 + n - 1)
  hset(data, a, m0 + n, #a)
  local t = tonumber(a[a0])
  redis.call('EXPIRE', meta, t)
  redis.call('EXPIRE', data, t)
  if idx then
    redis.call('HSET', idx, a[a0 + 2], a[a0 + 3])
    extend(idx, tonumber(a[a0 + 1]))
    local ep = redis.call('HGET', mark, 'ep')
    if ep then redis.call('HSET', meta, 'ep', ep) end
  end
  return true
end

-- the user's live sessions but `keep`, least recently used beyond `cap - 1` made tombstones;
-- their public ids. Index entries whose session is gone are dropped on the way.
local function evict(idx, cap, keep, now, stamp)
  local entries = redis.call('HGETALL', idx)
  local found = {}
  for i = 1, #entries, 2 do
    local sid, key = entries[i], entries[i + 1]
    local meta = 'hh:s:{' .. string.sub(key, 1, 4) .. '}' .. string.sub(key, 6)
    local data = 'hh:d:{' .. string.sub(key, 1, 4) .. '}' .. string.sub(key, 6)
    if redis.call('EXISTS', meta) == 0 then
      redis.call('HDEL', idx, sid)
    elseif sid ~= keep then
      local exp = live(meta, now)
      if exp and redis.call('HGET', meta, 'id') == sid then
        local f = redis.call('HMGET', meta, 'seen', 'created')
        found[#found + 1] = {tonumber(f[1]) or 0, tonumber(f[2]) or 0, sid, meta, data, exp}
      end
    end
  end
  local out = {}
  local over = #found + 1 - cap
  if over <= 0 then return out end
  table.sort(found, function(x, y)
    if x[1] ~= y[1] then return x[1] < y[1] end
    if x[2] ~= y[2] then return x[2] < y[2] end
    return x[3] < y[3]
  end)
  for j = 1, over do
    local s = found[j]
    tombstone(s[4], s[5], idx, s[3], now, stamp, s[6])
    out[#out + 1] = s[3]
  end
  return out
end

-- check the old session, measure the merged data, make the tombstone; a[d0..] are the new
-- session's data pairs. Returns status, the old data (flat) and the merged size.
local function retire(meta, data, idx, sid, now, stamp, maxb, keep, a, d0)
  local exp = live(meta, now)
  if not exp or redis.call('HGET', meta, 'id') ~= sid then return 'gone' end
  local old, size = {}, 0
  if keep then
    old = redis.call('HGETALL', data)
    size = tonumber(redis.call('HGET', meta, 'size')) or 0
    for i = d0, #a, 2 do
      local v = redis.call('HGET', data, a[i])
      if v then size = size - #a[i] - #v end
      size = size + #a[i] + #a[i + 1]
    end
    if size > maxb then return 'big', old, size end
  end
  tombstone(meta, data, idx, sid, now, stamp, exp)
  return 'ok', old, size
end
"""

# KEYS: meta, data. The meta, the data, and the owner's mark (ep, blk, at) or false.
GET = r"""
local m = redis.call('HGETALL', KEYS[1])
local mark = false
for i = 1, #m, 2 do
  if m[i] == 'user' then
    mark = redis.call('HMGET', 'hh:m:{' .. string.sub(KEYS[1], 7, 10) .. '}' .. m[i + 1], 'ep', 'blk', 'at')
    break
  end
end
return {m, redis.call('HGETALL', KEYS[2]), mark}
"""

# KEYS: meta, data[, index, mark]. ARGV: now, cap ('' = none), then create()'s (prelude).
# {'ok', ids ended by the cap...} or {'exists'}.
CREATE = r"""
if not create(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV, 3) then return {'exists'} end
local out = {'ok'}
if KEYS[3] and ARGV[2] ~= '' then
  for _, sid in ipairs(evict(KEYS[3], tonumber(ARGV[2]), ARGV[5], tonumber(ARGV[1]), ARGV[1])) do
    out[#out + 1] = sid
  end
end
return out
"""

# KEYS: meta, data. ARGV: now, max bytes, has timing, seen, idle ('' = none), abs, exp, persist,
# clear, #set, #unset, #incr, set pairs, unset keys, incr pairs.
UPDATE = r"""
local meta, data = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local exp = live(meta, now)
if not exp then return {'gone'} end
local clear = ARGV[9] == '1'
local nset, nunset, nincr = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local s0 = 13
local u0 = s0 + 2 * nset
local i0 = u0 + nunset
if clear or nset + nunset + nincr > 0 then
  for i = i0, i0 + 2 * nincr - 1, 2 do
    local v = redis.call('HGET', data, ARGV[i])
    if v and not is_int(v) then return {'notint', ARGV[i]} end
  end
  local size = 0
  if not clear then
    size = tonumber(redis.call('HGET', meta, 'size')) or 0
    for i = u0, i0 - 1 do
      local v = redis.call('HGET', data, ARGV[i])
      if v then size = size - #ARGV[i] - #v end
    end
    for i = s0, u0 - 1, 2 do
      local v = redis.call('HGET', data, ARGV[i])
      if v then size = size - #ARGV[i] - #v end
    end
  end
  for i = s0, u0 - 1, 2 do size = size + #ARGV[i] + #ARGV[i + 1] end
  -- HINCRBY keeps 64-bit exactness; what it changed is put back if anything is refused
  local saved = {}
  local function restore()
    for _, s in ipairs(saved) do
      if s[2] then redis.call('HSET', data, s[1], s[2]) else redis.call('HDEL', data, s[1]) end
    end
  end
  for i = i0, i0 + 2 * nincr - 1, 2 do
    local k = ARGV[i]
    local old = redis.call('HGET', data, k)
    local r = redis.pcall('HINCRBY', data, k, ARGV[i + 1])
    if type(r) == 'table' and r.err then
      restore()
      return {'overflow', k}
    end
    saved[#saved + 1] = {k, old}
    if old then size = size - #k - #old end
    size = size + #k + #redis.call('HGET', data, k)
  end
  if size > tonumber(ARGV[2]) then
    restore()
    return {'big', tostring(size)}
  end
  if clear then redis.call('DEL', data) else hdel(data, ARGV, u0, i0 - 1) end
  hset(data, ARGV, s0, u0 - 1)
  redis.call('HSET', meta, 'size', size)
end
local grew = 0
if ARGV[3] == '1' then
  local old_abs = tonumber(redis.call('HGET', meta, 'abs'))
  redis.call('HSET', meta, 'seen', ARGV[4], 'abs', ARGV[6], 'exp', ARGV[7], 'persist', ARGV[8])
  if ARGV[5] == '' then redis.call('HDEL', meta, 'idle') else redis.call('HSET', meta, 'idle', ARGV[5]) end
  if old_abs == nil or tonumber(ARGV[6]) > old_abs then grew = 1 end
  exp = tonumber(ARGV[7])
end
redis.call('HINCRBY', meta, 'ver', 1)
local t = ttl(exp, now)
redis.call('EXPIRE', meta, t)
redis.call('EXPIRE', data, t)
return {'ok', redis.call('HGETALL', meta), redis.call('HGETALL', data), grew}
"""

# KEYS: index. ARGV: ttl.
EXTEND = "extend(KEYS[1], tonumber(ARGV[1])) return 1"

# KEYS: meta, data[, index]. ARGV: now, public id. The record as it was, or false.
REVOKE = r"""
local now = tonumber(ARGV[1])
local exp = live(KEYS[1], now)
if not exp or redis.call('HGET', KEYS[1], 'id') ~= ARGV[2] then return false end
local before = {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
tombstone(KEYS[1], KEYS[2], KEYS[3], ARGV[2], now, ARGV[1], exp)
return before
"""

# KEYS: index, mark, then (meta, data) per session. ARGV: now, except id ('' = none), block
# ('' = unchanged, '1' = block, '0' = unblock), the public ids. Tombstones the live ones (none
# when unblocking) but `except`, forgets index entries whose session is gone, bumps the epoch
# and re-stamps `except` with it, so it alone survives. The ids revoked.
REVOKE_MANY = r"""
local now = tonumber(ARGV[1])
local idx, mark = KEYS[1], KEYS[2]
local done, keep = {}, nil
for i = 4, #ARGV do
  local meta, data, sid = KEYS[2 * (i - 3) + 1], KEYS[2 * (i - 3) + 2], ARGV[i]
  if redis.call('EXISTS', meta) == 0 then
    redis.call('HDEL', idx, sid)
  else
    local exp = live(meta, now)
    if exp and redis.call('HGET', meta, 'id') == sid then
      if sid == ARGV[2] and ARGV[3] ~= '1' then
        keep = meta
      elseif ARGV[3] ~= '0' then
        tombstone(meta, data, idx, sid, now, ARGV[1], exp)
        done[#done + 1] = sid
      end
    end
  end
end
local ep = redis.call('HINCRBY', mark, 'ep', 1)
redis.call('HSET', mark, 'at', ARGV[1])
if ARGV[3] == '1' then redis.call('HSET', mark, 'blk', '1') end
if ARGV[3] == '0' then redis.call('HDEL', mark, 'blk') end
if keep then redis.call('HSET', keep, 'ep', ep) end
return done
"""

# KEYS: index, mark, then (meta, data) per session. ARGV: the public ids. One consistent
# snapshot: the mark (ep, blk), then per session {meta, data} or false when it is gone (its
# index entry is dropped then).
READ_MANY = r"""
local out = {redis.call('HMGET', KEYS[2], 'ep', 'blk')}
for i = 1, #ARGV do
  local meta, data = KEYS[2 * i + 1], KEYS[2 * i + 2]
  if redis.call('EXISTS', meta) == 0 then
    redis.call('HDEL', KEYS[1], ARGV[i])
    out[i + 1] = false
  else
    out[i + 1] = {redis.call('HGETALL', meta), redis.call('HGETALL', data)}
  end
end
return out
"""

# A rotation that keeps the owner (so one slot, and no cap to apply).
# KEYS: old meta, old data, new meta, new data[, old index][, new index, new mark].
# ARGV: now, max bytes, keep data, old id, has old index, has new index, then create()'s.
ROTATE = r"""
local now = tonumber(ARGV[1])
local k, oidx, nidx, nmark = 5, nil, nil, nil
if ARGV[5] == '1' then oidx = KEYS[k]; k = k + 1 end
if ARGV[6] == '1' then nidx = KEYS[k]; nmark = KEYS[k + 1] end
local d0 = 7 + 5 + tonumber(ARGV[11])
local status, old, size = retire(KEYS[1], KEYS[2], oidx, ARGV[4], now, ARGV[1],
                                 tonumber(ARGV[2]), ARGV[3] == '1', ARGV, d0)
if status ~= 'ok' then return {status, tostring(size)} end
if not create(KEYS[3], KEYS[4], nidx, nmark, ARGV, 7) then return {'exists'} end
if ARGV[3] == '1' then
  for i = 1, #old, 2 do redis.call('HSETNX', KEYS[4], old[i], old[i + 1]) end
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[7]))
  redis.call('HSET', KEYS[3], 'size', size)
end
return {'ok', redis.call('HGETALL', KEYS[3]), redis.call('HGETALL', KEYS[4])}
"""

# The first half of a rotation whose new session lives on another slot.
# KEYS: meta, data[, index]. ARGV: now, max bytes, keep data, old id, new data pairs.
RETIRE = r"""
local status, old, size = retire(KEYS[1], KEYS[2], KEYS[3], ARGV[4], tonumber(ARGV[1]),
                                 ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1', ARGV, 5)
if status ~= 'ok' then return {status, tostring(size)} end
return {'ok', old}
"""

# KEYS: meta, data[, index]. ARGV: now, public id. Deletes the session if its deadline passed,
# re-checked here so a session touched since the scan survives.
PURGE = r"""
local e = redis.call('HGET', KEYS[1], 'exp')
if not e then return 0 end
local exp = tonumber(e)
if exp and exp > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
if KEYS[3] then redis.call('HDEL', KEYS[3], ARGV[2]) end
return 1
"""

# KEYS: the kv key. ARGV: value, deadline, ttl, only if absent, now.
KV_SET = r"""
if ARGV[4] == '1' then
  local e = tonumber(redis.call('HGET', KEYS[1], 'e'))
  if e and tonumber(ARGV[5]) < e then return 0 end
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'e', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS: the kv key. ARGV: '' (any value) or '=' followed by the expected value.
KV_DELETE = r"""
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'v') ~= string.sub(ARGV[1], 2) then return 0 end
return redis.call('DEL', KEYS[1])
"""

SCRIPTS = {
    "get": GET,
    "create": CREATE,
    "update": UPDATE,
    "extend": EXTEND,
    "revoke": REVOKE,
    "revoke_many": REVOKE_MANY,
    "read_many": READ_MANY,
    "rotate": ROTATE,
    "retire": RETIRE,
    "purge": PURGE,
    "kv_set": KV_SET,
    "kv_delete": KV_DELETE,
}


def source(name: str) -> str:
    """The full text of one script; `get` skips the prelude, it is on the hot path."""
    body = SCRIPTS[name]
    return body if name == "get" else PRELUDE + body
