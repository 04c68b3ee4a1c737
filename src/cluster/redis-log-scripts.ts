import { RedisScript } from "../redis/index.js";

/* The Lua scripts that keep the shared log on Redis (redis-log.ts) one epoch's, run by Redis as one step each. */

/**
 * Lua: whether the log lost its end while the epoch key stayed (Redis restarted from an
 * older RDB/AOF, failover to a lagging replica): `h`, the newest entry this process read,
 * is gone. No false alarm in a healthy Redis: XTRIM evicts "older entries (entries with lower
 * IDs)" only (redis.io, XTRIM), so a missing `h` with an older entry still there means lost; and
 * stream ids are never reused and keep moving forward after deletions (XDEL, XTRIM: last-generated-id
 * stays, checked on 7.0 with XTRIM MAXLEN 0), so a last-generated-id below `h` means lost too.
 * (pollchat never XDELs.) The second case alone would miss a loss once any process appended after
 * the restart, hence the first.
 */
const TAIL_LOST = `
local function parse(id)
  local d = string.find(id, '-', 1, true)
  if not d then return tonumber(id), 0 end
  return tonumber(string.sub(id, 1, d - 1)), tonumber(string.sub(id, d + 1))
end
local function below(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local function tailLost(log, h)
  if h == '0-0' then return false end
  if #redis.call('XRANGE', log, h, h) > 0 then return false end
  if redis.call('EXISTS', log) == 0 then return true end
  local info = redis.call('XINFO', 'STREAM', log)
  local last, first = '0-0', false
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] elseif info[i] == 'first-entry' then first = info[i + 1] end
  end
  if below(last, h) then return true end
  return first ~= false and below(first[1], h)
end
`;

/**
 * Appends a batch of records, all or none, and only to the log of this epoch:
 * a Redis that lost its data (restarted empty, flushed) has no epoch key, or
 * another, and one that lost the end of the log lacks the newest entry this process
 * read (ARGV[2]): a process still holding the old state can append nothing to the new log.
 * Nor after its deadline (ARGV[3], ms of Redis' clock): a batch that arrives late (it sat on
 * a dead connection, or in a stopped Redis) may belong to requests already answered 503,
 * so it is refused (store-clock.ts). Answers Redis' time (ms), which the process learns from.
 */
export const APPEND = new RedisScript(`${TAIL_LOST}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[3]) then return redis.error_reply('LATE the append came after its deadline (' .. now .. ' > ' .. ARGV[3] .. ')') end
local epoch = redis.call('GET', KEYS[2])
if epoch ~= ARGV[1] then return redis.error_reply('EPOCH the shared log is not the one this process read (Redis lost its data?)') end
if tailLost(KEYS[1], ARGV[2]) then return redis.error_reply('TAIL the shared log lost entries this process read (Redis restarted from older data?)') end
for i = 4, #ARGV do redis.call('XADD', KEYS[1], '*', 'r', ARGV[i]) end
return now
`);

/**
 * 0: the epoch is still ARGV[1] and the log has the newest entry this process read (ARGV[2]);
 * with a count (ARGV[5]), {0, up to that many entries after ARGV[4]}, read in the same step, so
 * no trim can fall between the check and the read.
 * 3: so far so good, but the entry a read is after (ARGV[4]) is trimmed: entries after it may be
 * gone too (this process fell behind the trim). 1: the epoch changed.
 * 2: the log lost its end: a new epoch, ARGV[3], is set, only if the epoch is still the one this
 * process read (compare-and-set: several processes noticing at once make one), and the old epoch's
 * entries and snapshot pointer are dropped (ids go on above them: XTRIM keeps last-generated-id),
 * so every process starts the new epoch from the same empty state.
 */
export const CHECK = new RedisScript(`${TAIL_LOST}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 1 end
if not tailLost(KEYS[1], ARGV[2]) then
  if ARGV[4] ~= '' and ARGV[4] ~= '0-0' and #redis.call('XRANGE', KEYS[1], ARGV[4], ARGV[4]) == 0 then return 3 end
  if ARGV[5] == nil then return 0 end
  return { 0, redis.call('XRANGE', KEYS[1], '(' .. ARGV[4], '+', 'COUNT', ARGV[5]) }
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
local pointer = redis.call('GET', KEYS[3])
redis.call('DEL', KEYS[3])
if pointer then
  local ok, p = pcall(cjson.decode, pointer)
  for _, s in ipairs(ok and type(p) == 'table' and { p, p.prev } or {}) do
    if type(s) == 'table' and type(s.pos) == 'string' and type(s.n) == 'number' then
      for i = 0, s.n - 1 do redis.call('DEL', KEYS[3] .. ':' .. s.pos .. ':' .. i) end
    end
  end
end
return 2
`);
