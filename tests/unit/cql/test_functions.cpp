#include <doctest/doctest.h>

#include "common/cql/functions.h"

using namespace zdm::cql;

TEST_CASE("non-deterministic calls in write statements") {
  SUBCASE("the migration lab's insert: uuid() and toTimestamp(now()) among bind markers") {
    std::string q = "INSERT INTO ks.t (id, name, created) VALUES (uuid(), ?, toTimestamp( NOW() ))";
    auto s = scan_statement(q);
    REQUIRE(s.calls.size() == 2);
    CHECK(s.markers == 1);
    CHECK(s.calls[0].value == Generated::kUuid);
    CHECK(q.substr(s.calls[0].begin, s.calls[0].end - s.calls[0].begin) == "uuid()");
    CHECK(s.calls[0].marker_index == 0);
    CHECK(s.calls[1].value == Generated::kTimestamp);
    CHECK(q.substr(s.calls[1].begin, s.calls[1].end - s.calls[1].begin) == "toTimestamp( NOW() )");
    CHECK(s.calls[1].marker_index == 2);
    CHECK(calls_to_markers(q, s) == "INSERT INTO ks.t (id, name, created) VALUES (?, ?, ?)");
    CHECK(!s.conditional);
    CHECK(!s.counter_update);
  }
  SUBCASE("names inside strings, comments and quoted identifiers are not calls") {
    auto s = scan_statement(
        "UPDATE t SET \"now()\" = 'uuid()' /* now() */ WHERE k = $$currentDate()$$ -- uuid()");
    CHECK(s.calls.empty());
  }
  SUBCASE("named markers get named replacements") {
    std::string q = "UPDATE t SET ts = currentTimestamp(), d = currentDate() WHERE k = :key";
    auto s = scan_statement(q);
    CHECK(s.named_markers);
    CHECK(s.markers == 1);
    CHECK(calls_to_markers(q, s) ==
          "UPDATE t SET ts = :zdm_generated_0, d = :zdm_generated_1 WHERE k = :key");
  }
  SUBCASE("conditional writes and counter updates are recognised") {
    CHECK(scan_statement("INSERT INTO t (k) VALUES (1) IF NOT EXISTS").conditional);
    CHECK(scan_statement("UPDATE t SET v = 1 WHERE k = 1 IF v = 0").conditional);
    CHECK(scan_statement("DELETE FROM t WHERE k = 1 IF EXISTS").conditional);
    CHECK(scan_statement("UPDATE t SET c = c + 1 WHERE k = 1").counter_update);
    CHECK(!scan_statement("UPDATE t SET l = l + [1] WHERE k = 1").counter_update);
    CHECK(!scan_statement("INSERT INTO t (k, m) VALUES (1, {'a': 1})").conditional);
  }
  SUBCASE("a function call with arguments other than now() is left alone") {
    CHECK(scan_statement("INSERT INTO t (k, v) VALUES (1, toTimestamp(?))").calls.empty());
    CHECK(scan_statement("INSERT INTO t (k, v) VALUES (1, blobAsText(0x00))").calls.empty());
  }
}

TEST_CASE("generated values and their literals") {
  const int64_t now_us = 1795660800123456;  // 2026-11-26T02:40:00.123456Z
  SUBCASE("timestamps and bigints are milliseconds") {
    Bytes ts = generate(Generated::kTimestamp, now_us);
    CHECK(ts.size() == 8);
    CHECK(literal(Generated::kTimestamp, ts) == "1795660800123");
    CHECK(literal(Generated::kUnixMillis, generate(Generated::kUnixMillis, now_us)) ==
          "1795660800123");
  }
  SUBCASE("dates count days with 2^31 at the epoch") {
    Bytes d = generate(Generated::kDate, now_us);
    CHECK(d.size() == 4);
    CHECK(literal(Generated::kDate, d) == std::to_string((1ull << 31) + 20783));
  }
  SUBCASE("time is nanoseconds since midnight") {
    CHECK(literal(Generated::kTime, generate(Generated::kTime, now_us)) == "9600123456000");
  }
  SUBCASE("timeuuids are version 1 with the time in them, uuids version 4") {
    Bytes t = generate(Generated::kTimeUuid, now_us);
    REQUIRE(t.size() == 16);
    CHECK((std::to_integer<int>(t[6]) >> 4) == 1);
    CHECK((std::to_integer<int>(t[8]) & 0xC0) == 0x80);
    // time_low of 100-ns intervals since 1582-10-15
    uint64_t ts = static_cast<uint64_t>(now_us) * 10 + 0x01B21DD213814000ULL;
    uint32_t low = (std::to_integer<uint32_t>(t[0]) << 24) |
                   (std::to_integer<uint32_t>(t[1]) << 16) |
                   (std::to_integer<uint32_t>(t[2]) << 8) | std::to_integer<uint32_t>(t[3]);
    CHECK(low == static_cast<uint32_t>(ts));
    Bytes u = generate(Generated::kUuid, now_us);
    CHECK((std::to_integer<int>(u[6]) >> 4) == 4);
    std::string lit = literal(Generated::kUuid, u);
    CHECK(lit.size() == 36);
    CHECK(lit[8] == '-');
    CHECK(lit[14] == '4');
  }
  SUBCASE("replacing calls by literals keeps the rest of the text") {
    std::string q = "INSERT INTO t (k, v) VALUES (uuid(), 'x')";
    auto s = scan_statement(q);
    CHECK(replace_calls(q, s.calls, {"11111111-2222-4333-8444-555555555555"}) ==
          "INSERT INTO t (k, v) VALUES (11111111-2222-4333-8444-555555555555, 'x')");
  }
}
