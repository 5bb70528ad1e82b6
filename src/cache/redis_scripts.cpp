// The Lua scripts of the cache's Redis protocol; see redis_scripts.hpp and
// docs/invalidation.md.
#include "redis_scripts.hpp"

#include <string>

namespace sidecache::cache::scripts {
namespace {

// The slot's clock (docs/invalidation.md, "Ordering without a shared
// clock"): Redis TIME as integer microseconds, but never at or below the
// clock key (the last of KEYS), which holds the newest time any ordering
// script of this slot used. The key lives in the slot and is replicated and
// migrated with the values and watermarks it orders, so a server whose clock
// is behind (a promoted replica) still counts on from there. Printed
// without losing digits (Lua numbers are doubles: exact below 2^53, but
// tostring() rounds).
const char* const kNow =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local clock = tonumber(redis.call('GET', KEYS[#KEYS]) or '0') or 0\n"
    "if now <= clock then now = clock + 1 end\n";
// Moves the slot's clock to now (no expiry: it must outlive what it orders).
const char* const kStamp = "redis.call('SET', KEYS[#KEYS], string.format('%.0f', now))\n";

// tag_marks(v): the watermarks a tagged value (flag 4, cache/value.hpp)
// names at its end, read with one MGET; {} for anything else. The keys are
// the value's own column tags, stored by the fill that computed them.
const char* const kTagMarks =
    "local function tag_marks(v)\n"
    "  if type(v) ~= 'string' or string.len(v) < 27 or string.sub(v, 1, 2) ~= 'SC' then return {} end\n"
    "  if math.floor(string.byte(v, 4) / 4) % 2 == 0 then return {} end\n"
    "  local len = string.len(v)\n"
    "  local n = struct.unpack('<I2', v, len - 1)\n"
    "  if n == 0 or n + 26 > len then return {} end\n"
    "  local keys = {}\n"
    "  for k in string.gmatch(string.sub(v, len - 1 - n, len - 2), '[^\\n]+') do keys[#keys + 1] = k end\n"
    "  if #keys == 0 then return {} end\n"
    "  return redis.call('MGET', unpack(keys))\n"
    "end\n";

// raise(key, now, s, ttl, position): one watermark ("<time>" or
// "<time>:<position>") raised to now (s: now printed) and its position to
// `position`, never lowering either.
const char* const kRaise =
    "local function raise(key, now, s, ttl, position)\n"
    "  local cur = redis.call('GET', key) or '0'\n"
    "  local t = string.match(cur, '^%d+') or '0'\n"
    "  if tonumber(t) < now then t = s end\n"
    "  local lsn = string.match(cur, ':(%x+)$') or ''\n"
    "  if position > lsn then lsn = position end\n"
    "  if lsn ~= '' then t = t .. ':' .. lsn end\n"
    "  redis.call('SET', key, t, 'PX', ttl)\n"
    "end\n";


}  // namespace

const redis::Script kLookupTagged(std::string(kTagMarks) +
                                  "local r = redis.call('MGET', unpack(KEYS))\n"
                                  "for i = 1, #ARGV do r[#KEYS + i] = tag_marks(r[tonumber(ARGV[i])]) end\n"
                                  "return r\n");

// KEYS: value key, watermarks, lease key, clock. ARGV: token, lease_ttl_ms,
// cold ('1': the caller did not look first). Returns MGET(value,
// watermarks), then now, then 1 if the lease was taken, 0 if another holds
// it. A cold begin that finds a value other than a tombstone takes no
// lease and moves no clock (it is a lookup then): 2, and now is not a
// fill's start.
const redis::Script kBegin(std::string(kNow) + kTagMarks +
                           "local n = #KEYS - 2\n"
                           "local r = redis.call('MGET', unpack(KEYS, 1, n))\n"
                           "local v = r[1]\n"
                           "local open = ARGV[3] ~= '1' or not v or\n"
                           "  (string.sub(v, 1, 2) == 'SC' and string.len(v) >= 4 and math.floor(string.byte(v, 4) / 2) % 2 == 1)\n"
                           "r[n + 1] = string.format('%.0f', now)\n"
                           "if open then\n"
                           "  " + std::string(kStamp) +
                           "  r[n + 2] = redis.call('SET', KEYS[n + 1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0\n"
                           "else\n"
                           "  r[n + 2] = 2\n"
                           "end\n"
                           "r[n + 3] = tag_marks(r[1])\n"
                           "return r\n");

// KEYS: value key, watermarks, lease key, clock. ARGV: start_us,
// max_age_us, bytes, ttl_ms, token. Releases the lease held by token, then:
// 1 stored, 0 invalidated (watermark, tombstone or newer value at or after
// start, or a clock behind start: this server never saw the begin), -1 too
// old.
const redis::Script kCommit(std::string(kNow) +
                            "local lease = KEYS[#KEYS - 1]\n"
                            "if redis.call('GET', lease) == ARGV[5] then redis.call('DEL', lease) end\n"
                            "local start = tonumber(ARGV[1])\n"
                            "if clock < start then return 0 end\n"
                            "if now - start > tonumber(ARGV[2]) then return -1 end\n"
                            "for i = 2, #KEYS - 2 do\n"
                            "  local w = redis.call('GET', KEYS[i])\n"
                            "  if w and tonumber(string.match(w, '^%d+')) >= start then return 0 end\n"
                            "end\n"
                            "local head = redis.call('GETRANGE', KEYS[1], 0, 23)\n"
                            "if string.len(head) == 24 and string.sub(head, 1, 2) == 'SC' then\n"
                            "  if struct.unpack('<I8', head, 9) >= start then return 0 end\n"
                            "end\n"
                            "redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])\n"
                            "return 1\n");

// KEYS: lease key. ARGV: token. Deletes the lease if token holds it.
const redis::Script kRelease("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
                             "return 0\n");

// KEYS: value key, clock. ARGV: ttl_ms, L1 channel ('' for none), WAL
// position ('' or 16 hex digits). Writes a tombstone header (flags 2,
// created = now) followed by the position, tells every L1 on the channel
// ("<now>\n<key>"); returns now.
const redis::Script kTombstone(std::string(kNow) + kStamp +
                               "local v = 'SC' .. string.char(1, 2) .. struct.pack('<I4I8I8', 0, now, 0) .. ARGV[3]\n"
                               "redis.call('SET', KEYS[1], v, 'PX', ARGV[1])\n"
                               "local s = string.format('%.0f', now)\n"
                               "if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], s .. '\\n' .. KEYS[1]) end\n"
                               "return s\n");


// KEYS: watermarks, clock. ARGV: ttl_ms, L1 channel ('' for none), WAL
// position ('' or 16 hex digits). Raises each, tells every L1 on the
// channel ("<now>\n<key>\n<key>..."); returns now.
const redis::Script kWatermark(std::string(kNow) + kStamp + kRaise +
                               "local s = string.format('%.0f', now)\n"
                               "local marks = {}\n"
                               "for i = 1, #KEYS - 1 do\n"
                               "  marks[i] = KEYS[i]\n"
                               "  raise(KEYS[i], now, s, ARGV[1], ARGV[3])\n"
                               "end\n"
                               "if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], s .. '\\n' .. table.concat(marks, '\\n')) end\n"
                               "return s\n");

// KEYS: one key of this server (for the routing; not used). ARGV: ttl_ms,
// WAL position, n, then for each slot its clock and its n watermark
// copies. Every slot's copies are raised at that slot's clock (a script
// without flags may touch any key this server holds); returns the newest.
const redis::Script kWatermarkSlots(std::string(kRaise) +
                                    "local t = redis.call('TIME')\n"
                                    "local base = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
                                    "local n = tonumber(ARGV[3])\n"
                                    "local newest = 0\n"
                                    "local i = 4\n"
                                    "while i + n <= #ARGV do\n"
                                    "  local clock = tonumber(redis.call('GET', ARGV[i]) or '0') or 0\n"
                                    "  local now = base\n"
                                    "  if now <= clock then now = clock + 1 end\n"
                                    "  local s = string.format('%.0f', now)\n"
                                    "  redis.call('SET', ARGV[i], s)\n"
                                    "  for j = 1, n do raise(ARGV[i + j], now, s, ARGV[1], ARGV[2]) end\n"
                                    "  if now > newest then newest = now end\n"
                                    "  i = i + n + 1\n"
                                    "end\n"
                                    "return string.format('%.0f', newest)\n");

}  // namespace sidecache::cache::scripts
