// The pool's pure helpers: connection strings and one-line SQL errors.
#include <catch2/catch.hpp>

#include "sidecache/pg/pool.hpp"

TEST_CASE("conninfo_of: postgres.connect_timeout reaches every connection string, in whole seconds, unless the DSN sets one") {
  sidecache::config::PostgresConfig pg;
  pg.dsn = "host=db dbname=app";
  pg.connect_timeout = std::chrono::milliseconds(5000);
  CHECK(sidecache::pg::conninfo_of(pg) == "host=db dbname=app connect_timeout=5");
  pg.connect_timeout = std::chrono::milliseconds(1500);
  CHECK(sidecache::pg::conninfo_of(pg) == "host=db dbname=app connect_timeout=2");
  pg.dsn = "postgresql://app@db/app";
  CHECK(sidecache::pg::conninfo_of(pg) == "postgresql://app@db/app?connect_timeout=2");
  pg.dsn = "postgresql://app@db/app?sslmode=disable";
  CHECK(sidecache::pg::conninfo_of(pg) == "postgresql://app@db/app?sslmode=disable&connect_timeout=2");
  pg.dsn = "host=db connect_timeout=9";
  CHECK(sidecache::pg::conninfo_of(pg) == "host=db connect_timeout=9");
}

TEST_CASE("one_line_sql_error: PostgreSQL's lines joined, its LINE n given as the entity's line") {
  std::string what = "ERROR:  column \"nme\" does not exist\nLINE 3:     nme FROM users\n            ^\nHINT:  Perhaps you meant \"name\".\n";
  CHECK(sidecache::pg::one_line_sql_error(what) ==
        "ERROR:  column \"nme\" does not exist (at line 2 of the entity's SQL) HINT:  Perhaps you meant \"name\".");
}
