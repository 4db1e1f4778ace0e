// The session record in Redis, `session:{<key>}`, is a hash: `h:<request id>` = `instance|at|seq` for each holder
// (session-model.ts), `l:<request id>` = when its lease ends (ms, Redis's clock: its instance renews it while the
// holder lives, so a dead instance's holders lapse), `x:<request id>` for a holder that was displaced and has not
// released yet (so it is never put back), and `seq`, the highest X-Session-Seq seen. It lives while any holder's
// instance refreshes it, and `JARVIS_SESSION_TTL_MS` after the last holder left, for its seq. A claim's result is
// `session:{<key>}:claim:<request id>`: every key a script touches shares the session's hash tag, so on a Redis
// Cluster a session's scripts run on the shard that owns it. (A holder's lease lives in the record, rather than
// in its instance's liveness key, for the same reason.)

/**
 * session-model.ts's decide(), atomically. Holders whose lease has ended (their instance stopped renewing it) are
 * removed and reported as gone. A claimant that already holds the session (the same claim sent again after a timeout, or
 * the timed-out one run late) gets the first run's result back, from `claim:<request id>`; so a claim can be
 * retried until it is known how it ended.
 *
 * KEYS: session hash, claim result. ARGV: request id, holder value, at, seq ('' for none), policy, TTL ms,
 * Returns {kind, detail}: claimed/again with `listed#gone` (each `;`-joined
 * `id=instance|at|seq`: the displaced holders, or for `queue` the ones to wait for), stale with the highest
 * seq, superseded with the newer holder, busy, or void (RESOLVE ruled this claim out).
 */
export const CLAIM = `
local key, res = KEYS[1], KEYS[2]
local id = ARGV[1]
if redis.call('GET', res) == 'void' then return {'void', ''} end
if redis.call('HEXISTS', key, 'h:' .. id) == 1 then
  return {'again', redis.call('GET', res) or '#'}
end
if redis.call('HEXISTS', key, 'x:' .. id) == 1 then return {'superseded', ''} end
local at, seq = tonumber(ARGV[3]), tonumber(ARGV[4])
local top = tonumber(redis.call('HGET', key, 'seq'))
if seq and top and seq <= top then return {'stale', tostring(top)} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live, gone = {}, {}
local fields = redis.call('HGETALL', key)
local leases = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'l:' then leases[string.sub(fields[i], 3)] = tonumber(fields[i + 1]) end
end
for i = 1, #fields, 2 do
  local f, v = fields[i], fields[i + 1]
  if string.sub(f, 1, 2) == 'h:' then
    local hid = string.sub(f, 3)
    local inst, hat, hseq = string.match(v, '^([^|]+)|([^|]+)|(.*)$')
    local rec = hid .. '=' .. v
    local lease = leases[hid]
    if inst and lease and lease > now then
      table.insert(live, {id = hid, at = tonumber(hat), seq = tonumber(hseq), rec = rec})
    else
      redis.call('HDEL', key, f, 'l:' .. hid)
      table.insert(gone, rec)
    end
  end
end
local policy = ARGV[5]
if policy == 'reject' and #live > 0 then return {'busy', ''} end
if policy == 'cancel-previous' then
  for _, h in ipairs(live) do
    local newer
    if h.seq and seq and h.seq ~= seq then newer = h.seq > seq
    elseif h.at ~= at then newer = h.at > at
    else newer = h.id > id end
    if newer then return {'superseded', h.rec} end
  end
end
local listed = {}
if policy == 'cancel-previous' or policy == 'queue' then
  for _, h in ipairs(live) do
    table.insert(listed, h.rec)
    if policy == 'cancel-previous' then
      redis.call('HDEL', key, 'h:' .. h.id, 'l:' .. h.id)
      redis.call('HSET', key, 'x:' .. h.id, '1')
    end
  end
end
redis.call('HSET', key, 'h:' .. id, ARGV[2], 'l:' .. id, tostring(now + tonumber(ARGV[6])))
if seq then redis.call('HSET', key, 'seq', ARGV[4]) end
redis.call('PEXPIRE', key, ARGV[6])
local out = table.concat(listed, ';') .. '#' .. table.concat(gone, ';')
redis.call('SET', res, out, 'PX', ARGV[6])
return {'claimed', out}`;

/**
 * A holder leaves: its fields go; the record stays for its other holders, and when none is left, for its seq
 * (and any tombstone still waiting for its holder's release) until the TTL passes.
 * KEYS: session hash. ARGV: request id, TTL ms.
 */
export const RELEASE = `
redis.call('HDEL', KEYS[1], 'h:' .. ARGV[1], 'l:' .. ARGV[1], 'x:' .. ARGV[1])
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 'h:' then return 1 end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0`;

/**
 * Keeps a session's record alive for this instance's holders, renews their leases, and reports those of them it no longer holds
 * (Redis lost the record: a restart, an eviction, a TTL that ran out while Redis was frozen). They are not put
 * back as they were: each is claimed again (redis-registry.ts), so a request that claimed the session in the gap
 * and the holder that comes back are ordered like any two claims, and the older one is cancelled.
 * KEYS: session hash. ARGV: TTL ms, then the holders' request ids. Returns the ids missing from the record.
 */
export const REFRESH = `
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local t = redis.call('TIME')
local lease = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1]))
local missing = {}
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[1], 'h:' .. ARGV[i]) == 0 then table.insert(missing, ARGV[i])
  else redis.call('HSET', KEYS[1], 'l:' .. ARGV[i], lease) end
end
return missing`;

/**
 * How a claim whose answer never came (it timed out) ended, once its stream is gone: it ran (the result, whose
 * displaced holders still need their cancel), or it did not, and now never will (a late run gets `void`).
 * KEYS: claim result. ARGV: TTL ms.
 */
export const RESOLVE = `
local r = redis.call('GET', KEYS[1])
if r then return {'ran', r} end
redis.call('SET', KEYS[1], 'void', 'PX', ARGV[1])
return {'void', ''}`;
