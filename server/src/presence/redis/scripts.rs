//! The Lua scripts of presence in Redis: each runs atomically, which is what
//! makes a claim, a release or the burial of a dead node safe against every
//! other node doing the same at once.
//!
//! A name's entry is a hash: a field `"{node} {connection}"` per connection
//! holding it, valued `"{tab hash} {owner}"` (owner `-` for a guest, whose
//! names have one holder; else a fingerprint of the user, whose connections
//! may share the name), and, while its last holder leaves, a field
//! `leaving` naming it. Each node keeps a hash of what it holds
//! (`held:{node}`, fields `"{room} {connection} {name}"`, valued as in the
//! entry), so that when it dies its survivors know whose departure to
//! announce. The entry expires when no node refreshes it; while one does
//! (a user's device on a live node), a dead node's field in it goes only
//! when the node is buried, which is why a node beats before it claims. Scripts that touch another node's keys build their names from
//! the history's prefix (which is why Redis Cluster is not supported).

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

/// A Lua chunk: whether `deadline` (ms since the epoch by Redis's clock;
/// 0 for none) has passed. A node gives up on a script after a while;
/// one held up in the network (a partition that heals) may still reach
/// Redis after that, and must then change nothing: the node no longer
/// knows of it, so what it would add nobody would ever give back.
macro_rules! late_check {
    () => {
        r"
local function late(deadline)
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local by = tonumber(deadline)
  return by ~= nil and by > 0 and now > by
end
"
    };
}

/// Claims `KEYS[1]` (the name's entry) for `ARGV[1]` (the holder's field),
/// valued `ARGV[2]`, and keeps the entry `ARGV[3]` ms; adds `ARGV[4]` (the
/// name) to `KEYS[2]` (the room's names) and the held field (room
/// `ARGV[5]`) to `KEYS[3]` (this node's held hash). Free, the name is
/// taken; held by this holder, kept. Else a holder of the same tab is
/// replaced (its field dropped from its node's held hash: `ARGV[6]` is the
/// prefix of those) if all holders are of the claimant's user or it is
/// the only one; failing that, a user's connection joins its others (up to
/// `ARGV[7]`). While the entry's last holder is leaving, either is answered
/// `leaving` instead. Answers what it did and the number of names in
/// `KEYS[2]` then; `recovering` (nothing done) while `KEYS[4]`, the
/// incarnation mark, says Redis lost its data and the nodes are still
/// taking their names back: a name missing then is not free; `late`
/// (nothing done) past `ARGV[8]`, the deadline.
pub const CLAIM: &str = concat!(
    ready_check!(),
    late_check!(),
    r"
if late(ARGV[8]) then return {'late', '0'} end
if not ready(KEYS[4]) then return {'recovering', '0'} end
local function size() return tostring(redis.call('ZCARD', KEYS[2])) end
local function held_field(field)
  return ARGV[5] .. ' ' .. string.match(field, ' (%S+)$') .. ' ' .. ARGV[4]
end
local function take()
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('ZADD', KEYS[2], 0, ARGV[4])
  redis.call('HSET', KEYS[3], held_field(ARGV[1]), ARGV[2])
end
local all = redis.call('HGETALL', KEYS[1])
local leaving = false
local holders = {}
for i = 1, #all, 2 do
  if all[i] == 'leaving' then
    leaving = true
  elseif all[i] == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {'held', size()}
  else
    table.insert(holders, {all[i], all[i + 1]})
  end
end
if #holders == 0 then
  redis.call('DEL', KEYS[1])
  take()
  return {'free', size()}
end
local mine_tab, mine_owner = string.match(ARGV[2], '^(%S+) (%S+)$')
local same_owner = mine_owner ~= '-'
local stale = nil
for _, holder in ipairs(holders) do
  local tab, owner = string.match(holder[2], '^(%S+) (%S+)$')
  if owner ~= mine_owner then same_owner = false end
  if tab == mine_tab then stale = holder[1] end
end
if stale and not (same_owner or #holders == 1) then stale = nil end
if leaving and (stale or same_owner) then return {'leaving', size()} end
if stale then
  local node, connection = string.match(stale, '^(%S+) (%S+)$')
  redis.call('HDEL', KEYS[1], stale)
  redis.call('HDEL', ARGV[6] .. node, held_field(stale))
  take()
  return {'replaces', node, connection, size()}
end
if not same_owner then return {'taken', size()} end
if #holders >= tonumber(ARGV[7]) then return {'too_many', size()} end
take()
return {'shared', size()}
"
);

/// A Lua chunk: whether the entry `key` has no holder left (nothing, or
/// only a `leaving` mark).
macro_rules! unheld_check {
    () => {
        r"
local function unheld(key)
  local count = redis.call('HLEN', key)
  return count == 0 or (count == 1 and redis.call('HEXISTS', key, 'leaving') == 1)
end
"
    };
}

/// `ARGV[1]` (the holder's field, valued `ARGV[2]`) is leaving `KEYS[1]`:
/// with other holders left, gives it back (dropping `ARGV[4]`, its held
/// field, from `KEYS[3]`): `shared`; as the last, marks the entry `leaving`
/// (the release that follows gives it back): `last`. `gone` if it holds it
/// no more.
pub const DEPART: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 'gone' end
local others = redis.call('HLEN', KEYS[1]) - 1 - redis.call('HEXISTS', KEYS[1], 'leaving')
if others > 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[4])
  return 'shared'
end
redis.call('HSET', KEYS[1], 'leaving', ARGV[1])
return 'last'
";

/// Gives `KEYS[1]` back if `ARGV[1]` (valued `ARGV[2]`) still holds it:
/// drops the field (and a `leaving` mark naming it), and `ARGV[4]` (the
/// held field) from `KEYS[3]`; with no holder left, the entry goes, and
/// `ARGV[3]` (the name) leaves `KEYS[2]`.
pub const RELEASE: &str = concat!(
    unheld_check!(),
    r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[4])
if redis.call('HGET', KEYS[1], 'leaving') == ARGV[1] then redis.call('HDEL', KEYS[1], 'leaving') end
if unheld(KEYS[1]) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[3])
end
return 1
"
);

/// Keeps `KEYS[1]` for `ARGV[1]` (valued `ARGV[2]`) `ARGV[3]` ms more: 1 if
/// it held it (refreshed); 2 if the entry was gone (Redis restarted empty,
/// or this node was taken for dead) and is taken again; 3 if the holder was
/// gone from it but its user's other connections hold it (and no connection
/// of its tab: that replaced it), and it is back beside them; 0 if someone
/// else has it now; 4 (nothing done) past `ARGV[6]`, the deadline. Taking
/// it again adds `ARGV[4]` (the name) to `KEYS[2]` and `ARGV[5]` (the
/// held field) to `KEYS[3]`.
pub const REFRESH: &str = concat!(
    late_check!(),
    r"
if late(ARGV[6]) then return 4 end
local function take()
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('ZADD', KEYS[2], 0, ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[2])
end
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then take() return 2 end
local mine_tab, mine_owner = string.match(ARGV[2], '^(%S+) (%S+)$')
local shares = mine_owner ~= '-'
for i = 1, #all, 2 do
  if all[i] == ARGV[1] then
    if all[i + 1] ~= ARGV[2] then return 0 end
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  if all[i] ~= 'leaving' then
    local tab, owner = string.match(all[i + 1], '^(%S+) (%S+)$')
    if tab == mine_tab or owner ~= mine_owner then shares = false end
  end
end
if shares then take() return 3 end
return 0
"
);

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
/// others that time too, from now. Also returns the ms until the mark is
/// ready, and Redis's time (ms since the epoch).
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
return {buried, due, id, math.max(0, tonumber(ready_at) - now), now}
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

/// Frees names of a buried node (`ARGV[2]`), and drops them from its
/// set-aside held hash (`KEYS[1]`), so a burial taken on after its burier
/// died goes on from there. `ARGV[1]` is the history's key prefix, then
/// come quadruples of room, name, connection and holder value. The node's
/// field leaves a name's entry that still has it as it was; a name with no
/// holder left then (or whose entry expired) is free. Returns the 0-based
/// indexes of the quadruples that freed a name (the others' names were
/// taken back by their tabs, or are still held by their users' other
/// connections).
pub const FREE: &str = concat!(
    unheld_check!(),
    r"
local prefix, node = ARGV[1], ARGV[2]
local freed = {}
for i = 3, #ARGV, 4 do
  local room, nick, connection, value = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  redis.call('HDEL', KEYS[1], room .. ' ' .. connection .. ' ' .. nick)
  local entry = prefix .. 'holders:' .. room .. ':' .. nick
  local field = node .. ' ' .. connection
  if redis.call('HGET', entry, field) == value then
    redis.call('HDEL', entry, field)
    if redis.call('HGET', entry, 'leaving') == field then redis.call('HDEL', entry, 'leaving') end
    if unheld(entry) then
      redis.call('DEL', entry)
      redis.call('ZREM', prefix .. 'names:' .. room, nick)
      table.insert(freed, (i - 3) / 4)
    end
  elseif redis.call('EXISTS', entry) == 0 then
    redis.call('ZREM', prefix .. 'names:' .. room, nick)
    table.insert(freed, (i - 3) / 4)
  end
end
return freed
"
);
