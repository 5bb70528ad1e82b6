#include <catch2/catch.hpp>

#include "sidecache/pg/lsn.hpp"
#include "sidecache/pg/wal_clock.hpp"

using namespace sidecache::pg;

TEST_CASE("WAL positions: PostgreSQL's text form and the fixed-width hex the cache stores both round-trip") {
  CHECK(parse_lsn("16/B374D848") == Lsn{0x16B374D848});
  CHECK(parse_lsn("0/0") == Lsn{0});
  CHECK(parse_lsn("FFFFFFFF/FFFFFFFF") == kUnknownLsn);
  CHECK(format_lsn(0x16B374D848) == "16/B374D848");
  CHECK(format_lsn(0) == "0/0");
  CHECK(format_lsn(0x300000000) == "3/0");
  CHECK(lsn_hex(0x16B374D848) == "00000016B374D848");
  CHECK(parse_lsn_hex("00000016B374D848") == Lsn{0x16B374D848});
  for (Lsn v : {Lsn{0}, Lsn{1}, Lsn{0x16B374D848}, Lsn{0xFFFFFFFF}, Lsn{0x100000000}, kUnknownLsn - 1}) {
    CHECK(parse_lsn(format_lsn(v)) == v);
    CHECK(parse_lsn_hex(lsn_hex(v)) == v);
  }
  // Fixed width: string order is numeric order (the Lua scripts compare strings).
  CHECK(lsn_hex(0x9) < lsn_hex(0x10));
  CHECK(lsn_hex(0xFFFFFFFF) < lsn_hex(0x100000000));
  for (const char* bad : {"", "16", "/1", "1/", "G/1", "123456789/0", "1/2/3"}) CHECK_FALSE(parse_lsn(bad));
  for (const char* bad : {"", "16B374D848", "00000016B374D84G", "00000016B374D8480"}) CHECK_FALSE(parse_lsn_hex(bad));
}

TEST_CASE("an insert position just past a page header is the page boundary the replica's replay stops at") {
  CHECK(settled_insert_lsn(0x11000028, 8192) == 0x11000000);  // a segment's first page: 40-byte header
  CHECK(settled_insert_lsn(0x11002018, 8192) == 0x11002000);  // any other page: 24 bytes
  CHECK(settled_insert_lsn(0x11002030, 8192) == 0x11002030);  // a record ended there
  CHECK(settled_insert_lsn(0x11000F68, 8192) == 0x11000F68);
  CHECK(settled_insert_lsn(0x11000000, 8192) == 0x11000000);
  CHECK(settled_insert_lsn(0x11000028, 0) == 0x11000028);  // block size unknown: as read
}

TEST_CASE("replica lag: the time since the first primary position the replica has not replayed") {
  using namespace std::chrono_literals;
  auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  std::deque<WalSample> samples;
  CHECK_FALSE(lag_since(samples, 0, t0));  // nothing known yet
  samples = {{t0, 100}, {t0 + 1s, 200}, {t0 + 2s, 300}};
  auto now = t0 + 3s;
  CHECK(lag_since(samples, 300, now) == std::chrono::steady_clock::duration::zero());
  CHECK(lag_since(samples, 400, now) == std::chrono::steady_clock::duration::zero());
  CHECK(lag_since(samples, 250, now) == 1s);  // behind since 300 was seen
  CHECK(lag_since(samples, 150, now) == 2s);
  CHECK(lag_since(samples, 0, now) == 3s);
  // An idle primary (one old position, replayed) is no lag.
  samples = {{t0, 100}};
  CHECK(lag_since(samples, 100, t0 + 1h) == std::chrono::steady_clock::duration::zero());
}
