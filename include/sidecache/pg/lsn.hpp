#pragma once
// PostgreSQL WAL positions ("16/B374D848") as integers, and the fixed-width
// hex form the cache stores them in (16 digits, so that Lua compares them as
// strings without the rounding of its doubles).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sidecache::pg {

using Lsn = std::uint64_t;
// A position no replica reaches: fills it covers read the primary. Recorded
// when an invalidation could not read the primary's position.
constexpr Lsn kUnknownLsn = ~Lsn{0};

// "16/B374D848" -> 0x16B374D848; nullopt when it is not one.
std::optional<Lsn> parse_lsn(std::string_view text);
// 0x16B374D848 -> "16/B374D848" (PostgreSQL's own form, for SQL and logs).
std::string format_lsn(Lsn lsn);
// 0x16B374D848 -> "00000016B374D848"; and back (nullopt unless 16 hex digits).
std::string lsn_hex(Lsn lsn);
std::optional<Lsn> parse_lsn_hex(std::string_view text);

// pg_current_wal_insert_lsn() right after a page header (24 bytes, or 40 on
// a segment's first page) means the last record ended at the page boundary,
// which is where a replica's replay position stops: that boundary. (No
// record can start or end 24 or 40 bytes into a page otherwise.)
Lsn settled_insert_lsn(Lsn insert, std::uint32_t wal_block_size);

}  // namespace sidecache::pg
