#include <doctest/doctest.h>

#include "common/cql/messages.h"
#include "proxy/rewrite.h"

using namespace zdm::proxy;
using namespace zdm;
using cql::Bytes;

namespace {
Bytes body_of(const cql::QueryMsg& q, uint8_t v) {
  Bytes b;
  cql::Writer w(b);
  q.encode(w, v);
  return b;
}
cql::QueryMsg query_of(const Bytes& b, uint8_t v) {
  cql::Reader r(b);
  return cql::QueryMsg::decode(r, v);
}
}  // namespace

TEST_CASE("writes rewritten for both clusters") {
  const int64_t now_us = 1795660800123456;
  SUBCASE("a QUERY without a timestamp gets one; calls become literals") {
    for (uint8_t v : {3, 4, 5}) {
      cql::QueryMsg q;
      q.query = "INSERT INTO t (k, ts) VALUES (uuid(), toTimestamp(now()))";
      auto scan = cql::scan_statement(q.query);
      auto out = rewrite_query(body_of(q, v), 0, v, scan, now_us);
      REQUIRE(out);
      auto got = query_of(*out, v);
      CHECK((got.params.flags & cql::query_flag::kDefaultTimestamp) != 0);
      CHECK(got.params.timestamp == now_us);
      CHECK(got.query.find("uuid()") == std::string::npos);
      CHECK(got.query.find(", 1795660800123)") != std::string::npos);
    }
  }
  SUBCASE("a QUERY with the driver's timestamp and no call is left as it is") {
    cql::QueryMsg q;
    q.query = "INSERT INTO t (k) VALUES (1)";
    q.params.flags = cql::query_flag::kDefaultTimestamp;
    q.params.timestamp = 42;
    CHECK(!rewrite_query(body_of(q, 4), 0, 4, cql::scan_statement(q.query), now_us));
  }
  SUBCASE("lightweight transactions and counter updates get no timestamp") {
    for (const char* text :
         {"INSERT INTO t (k) VALUES (1) IF NOT EXISTS", "UPDATE c SET n = n + 1 WHERE k = 1"}) {
      cql::QueryMsg q;
      q.query = text;
      CHECK(!rewrite_query(body_of(q, 4), 0, 4, cql::scan_statement(text), now_us));
    }
  }
  SUBCASE("an EXECUTE gets the generated values at their markers") {
    auto scan =
        cql::scan_statement("INSERT INTO t (k, a, ts) VALUES (uuid(), ?, currentTimestamp())");
    WritePlan plan = plan_write(scan, true);
    REQUIRE(plan.generated.size() == 2);
    cql::ExecuteMsg e;
    e.id = Bytes(16, std::byte{7});
    e.params.flags = cql::query_flag::kValues;
    e.params.values = {cql::Value::of(cql::to_bytes("client"))};
    Bytes b;
    cql::Writer w(b);
    e.encode(w, 4);
    auto out = rewrite_execute(b, 0, 4, plan, now_us);
    REQUIRE(out);
    cql::Reader r(*out);
    auto got = cql::ExecuteMsg::decode(r, 4);
    REQUIRE(got.params.values.size() == 3);
    CHECK(got.params.values[0].bytes.size() == 16);                // uuid()
    CHECK(got.params.values[1].bytes == cql::to_bytes("client"));  // the client's value
    CHECK(cql::literal(cql::Generated::kTimestamp, got.params.values[2].bytes) == "1795660800123");
    CHECK(got.params.timestamp == now_us);
  }
  SUBCASE("the client's PREPARED metadata does not show the proxy's markers") {
    auto scan = cql::scan_statement("INSERT INTO t (k, a) VALUES (uuid(), ?)");
    WritePlan plan = plan_write(scan, true);
    cql::PreparedResult p;
    p.id = Bytes(16, std::byte{1});
    p.metadata.columns = {{"ks", "t", "k", cql::DataType::of(cql::TypeId::kUuid)},
                          {"ks", "t", "a", cql::DataType::of(cql::TypeId::kVarchar)}};
    p.metadata.pk_indices = {0};
    auto msg = hide_generated(cql::ResultMsg{p}, plan);
    auto& got = std::get<cql::PreparedResult>(msg.body);
    REQUIRE(got.metadata.columns.size() == 1);
    CHECK(got.metadata.columns[0].name == "a");
    CHECK(got.metadata.pk_indices.empty());  // the key is generated: no routing key for the client
  }
  SUBCASE("a BATCH: simple children get literals, prepared ones their values, one timestamp") {
    auto scan = cql::scan_statement("INSERT INTO t (k, a) VALUES (now(), ?)");
    WritePlan plan = plan_write(scan, true);
    cql::BatchMsg batch;
    batch.children.push_back({false, "INSERT INTO t (k, a) VALUES (uuid(), 'x')", {}, {}});
    batch.children.push_back(
        {true, "", Bytes(16, std::byte{9}), {cql::Value::of(cql::to_bytes("y"))}});
    Bytes b;
    cql::Writer w(b);
    batch.encode(w, 4);
    auto out = rewrite_batch(
        b, 0, 4, [&](const Bytes&) { return &plan; }, now_us);
    REQUIRE(out);
    cql::Reader r(*out);
    auto got = cql::BatchMsg::decode(r, 4);
    CHECK(got.children[0].query.find("uuid()") == std::string::npos);
    CHECK(got.children[1].values.size() == 2);
    CHECK(got.timestamp == now_us);
    batch.type = cql::BatchType::kCounter;
    batch.children.resize(1);
    batch.children[0].query = "UPDATE c SET n = n + 1 WHERE k = 1";
    Bytes cb;
    cql::Writer cw(cb);
    batch.encode(cw, 4);
    CHECK(!rewrite_batch(
        cb, 0, 4, [&](const Bytes&) { return &plan; }, now_us));
  }
  SUBCASE("write timestamps strictly increase on a thread") {
    int64_t a = write_timestamp_us(), b = write_timestamp_us();
    CHECK(b > a);
  }
}
