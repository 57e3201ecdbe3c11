//! The Lua scripts of presence in Redis: each runs atomically, which is what
//! makes a claim, a release or the burial of a dead node safe against every
//! other node doing the same at once.
//!
//! Holders are `"{node} {connection} {tab hash}"`. Each node keeps a hash of
//! what it holds (`held:{node}`), so that when it dies its survivors know
//! whose departure to announce. Scripts that touch another node's keys build
//! their names from the history's prefix (which is why Redis Cluster is not
//! supported).

/// Whether presence may be claimed in now: `KEYS[4]` (the incarnation
/// mark, `"{id} {ready_at_ms}"`) exists and its time has come. A Lua chunk
/// the scripts that need it start with.
macro_rules! ready_check {
    () => {
        r"
local function ready(key)
  local mark = redis.call('GET', key)
  if not mark then return false end
  local at = tonumber(string.match(mark, ' (%d+)$'))
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  return at ~= nil and at <= now
end
"
    };
}

/// Claims `KEYS[1]` (the name's entry) for `ARGV[1]` (the holder) for
/// `ARGV[2]` ms; adds `ARGV[3]` (the name) to `KEYS[2]` (the room's names)
/// and `ARGV[4]` (the held field) to `KEYS[3]` (this node's held hash). A
/// holder replaced on another node loses the field from its node's hash
/// (`ARGV[5]` is the prefix of those hashes). Answers what it did and the
/// number of names in `KEYS[2]` then; `recovering` (nothing done) while
/// `KEYS[4]`, the incarnation mark, says Redis lost its data and the nodes
/// are still taking their names back: a name missing then is not free.
pub const CLAIM: &str = concat!(
    ready_check!(),
    r"
if not ready(KEYS[4]) then return {'recovering', '0'} end
local current = redis.call('GET', KEYS[1])
local function take()
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], 0, ARGV[3])
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[1])
end
local function size() return tostring(redis.call('ZCARD', KEYS[2])) end
if not current then take() return {'free', size()} end
local node, connection, tab = string.match(current, '^(%S+) (%S+) (%S+)$')
local mine_node, mine_connection, mine_tab = string.match(ARGV[1], '^(%S+) (%S+) (%S+)$')
if node == mine_node and connection == mine_connection then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'held', size()}
end
if tab == mine_tab then
  if node ~= mine_node then redis.call('HDEL', ARGV[5] .. node, ARGV[4]) end
  take()
  return {'replaces', node, connection, size()}
end
return {'taken', size()}
"
);

/// Gives `KEYS[1]` back if `ARGV[1]` still holds it: drops `ARGV[2]` (the
/// name) from `KEYS[2]` and `ARGV[3]` (the held field) from `KEYS[3]`.
pub const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[3])
end
return 1
";

/// Keeps `KEYS[1]` for `ARGV[1]`: 1 if it held it (refreshed), 2 if the
/// entry was gone (Redis restarted empty, or this node was taken for dead)
/// and is taken again, 0 if someone else has it now.
pub const REFRESH: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], 0, ARGV[3])
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[1])
  return 2
end
return 0
";

/// The first `ARGV[1]` names of `KEYS[1]` whose entries (`ARGV[2]` .. name)
/// still exist; the others are dropped from the set. An error while
/// `KEYS[2]`, the incarnation mark, says the nodes are still taking their
/// names back (a list read then would miss them).
pub const LIST: &str = concat!(
    ready_check!(),
    r"
if not ready(KEYS[2]) then return redis.error_reply('RECOVERING presence is being restored') end
local wanted = tonumber(ARGV[1])
local found = {}
local start = 0
while #found < wanted do
  local names = redis.call('ZRANGE', KEYS[1], start, start + wanted - 1)
  if #names == 0 then break end
  for _, name in ipairs(names) do
    if redis.call('EXISTS', ARGV[2] .. name) == 1 then
      if #found < wanted then table.insert(found, name) end
      start = start + 1
    else
      redis.call('ZREM', KEYS[1], name)
    end
  end
end
return found
"
);

/// This node (`ARGV[1]`) is alive for `ARGV[2]` ms more, by Redis's clock
/// (nodes' clocks may disagree). Returns whether it was taken for dead and
/// its burial is over, so it is to come back (`KEYS[2]`, its burial mark,
/// exists: the node removes it once it has announced its return; and it is
/// not among `KEYS[3]`, the burials under way: coming back while names are
/// still being freed would have them freed after), up to 16 nodes to bury
/// (those of `KEYS[1]` whose time is up, and those of `KEYS[3]` whose burier
/// has not been heard of for `ARGV[3]` ms: it died, or Redis went away half
/// way), and the id of the incarnation of presence Redis holds.
///
/// That is `KEYS[4]`, `"{id} {ready_at_ms}"`. Missing, Redis lost its data
/// (or the history is new): it is made with id `ARGV[6]`, ready in `ARGV[8]`
/// ms if `ARGV[7]` is `0` (this node held nothing, and knew no incarnation:
/// just started, it cannot tell a new history from a Redis that lost the
/// others' names, so it waits for the others' next beats, each of which
/// gives the full grace if it knew another id), else in `ARGV[5]` ms, the
/// time every node has to take its names back (they learn of the new id at
/// their next beat). A node that knew another id (`ARGV[4]`) gives the
/// others that time too, from now. Also returns the ms until the mark is ready.
pub const BEAT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local buried = 0
if redis.call('EXISTS', KEYS[2]) == 1 and not redis.call('ZSCORE', KEYS[3], ARGV[1]) then buried = 1 end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 16)
local stalled = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]), 'LIMIT', 0, 16)
for _, node in ipairs(stalled) do table.insert(due, node) end
local grace = now + tonumber(ARGV[5])
local mark = redis.call('GET', KEYS[4])
local id, ready_at
if mark then id, ready_at = string.match(mark, '^(%S+) (%d+)$') end
if not id then
  id = ARGV[6]
  ready_at = now + tonumber(ARGV[8])
  if ARGV[7] == '1' then ready_at = grace end
  redis.call('SET', KEYS[4], id .. ' ' .. ready_at)
elseif ARGV[4] ~= '' and ARGV[4] ~= id and tonumber(ready_at) < grace then
  ready_at = grace
  redis.call('SET', KEYS[4], id .. ' ' .. grace)
end
return {buried, due, id, math.max(0, tonumber(ready_at) - now)}
";

/// Takes on the burial of node `ARGV[1]` (of several nodes trying at once,
/// one does): if a burial of it under way has not moved for `ARGV[3]` ms,
/// takes that on, even if the node beats again (it was only late: it comes
/// back once its burial is over; left unfinished, the names set aside would
/// never be freed nor announced). Otherwise, if none is under way and its
/// time in `KEYS[1]` is up, marks it buried (`KEYS[3]`, for `ARGV[2]` s),
/// sets its held hash (`KEYS[2]`) aside as `KEYS[4]`, and notes the burial
/// under way in `KEYS[5]`. The burier then frees its names a chunk at a time
/// ([`FREE`]): one script freeing tens of thousands would stall Redis for
/// every node. 1 if this call took the burial on.
pub const BURY: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local started = redis.call('ZSCORE', KEYS[5], ARGV[1])
if started then
  if tonumber(started) + tonumber(ARGV[3]) <= now then
    redis.call('ZADD', KEYS[5], now, ARGV[1])
    return 1
  end
  return 0
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > now then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SET', KEYS[3], 1, 'EX', ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[4]) end
redis.call('ZADD', KEYS[5], now, ARGV[1])
return 1
";

/// Frees names of a buried node, and drops them from its set-aside held
/// hash (`KEYS[1]`), so a burial taken on after its burier died goes on
/// from there. `ARGV[1]` is the history's key prefix, then come triples of
/// room, name and holder. A name whose entry still names that holder (or
/// has expired) is freed; returns the 0-based indexes of the triples freed
/// (the others were taken back by their tabs).
pub const FREE: &str = r"
local prefix = ARGV[1]
local freed = {}
for i = 2, #ARGV, 3 do
  local room, nick, holder = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('HDEL', KEYS[1], room .. ' ' .. nick)
  local entry = prefix .. 'nick:' .. room .. ':' .. nick
  local current = redis.call('GET', entry)
  if current == holder or not current then
    if current then redis.call('DEL', entry) end
    redis.call('ZREM', prefix .. 'names:' .. room, nick)
    table.insert(freed, (i - 2) / 3)
  end
end
return freed
";
