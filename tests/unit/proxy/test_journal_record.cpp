#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "common/cql/messages.h"
#include "proxy/journal_record.h"

using namespace zdm;
using namespace zdm::proxy;
using cql::Bytes;

namespace {
cql::QueryParameters params_with_values() {
  cql::QueryParameters p;
  p.consistency = cql::Consistency::kLocalQuorum;
  p.flags = cql::query_flag::kValues | cql::query_flag::kDefaultTimestamp;
  p.values = {cql::Value::of({std::byte{0}, std::byte{0}, std::byte{0}, std::byte{7}}),
              cql::Value::unset()};
  p.timestamp = 1700000000123456;
  return p;
}
Bytes as_bytes(const std::string& s) {
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}
}  // namespace

TEST_CASE(
    "journal record: an EXECUTE becomes the QUERY of its statement with the same parameters") {
  for (uint8_t v : {uint8_t{4}, uint8_t{5}}) {
    CAPTURE(v);
    cql::ExecuteMsg e;
    e.id = {std::byte{1}, std::byte{2}};
    e.result_metadata_id = {std::byte{3}};
    e.params = params_with_values();
    Bytes body;
    cql::Writer w(body);
    e.encode(w, v);
    const std::string q = replayable_execute(body, 0, v, "INSERT INTO ks.t (k, v) VALUES (?, ?)");
    const Bytes qb = as_bytes(q);
    cql::Reader r(qb);
    const auto msg = cql::QueryMsg::decode(r, v);
    // The parameters are the EXECUTE's own bytes (what the proxy journals, without a copy).
    const auto params = execute_parameters(body, 0, v);
    CHECK(std::equal(params.begin(), params.end(), qb.end() - static_cast<long>(params.size())));
    CHECK(msg.query == "INSERT INTO ks.t (k, v) VALUES (?, ?)");
    CHECK(msg.params.consistency == cql::Consistency::kLocalQuorum);
    CHECK(msg.params.timestamp == 1700000000123456);
    REQUIRE(msg.params.values.size() == 2);
    CHECK(msg.params.values[0].bytes == e.params.values[0].bytes);
    CHECK(msg.params.values[1].kind == cql::Value::Kind::kUnset);
  }
}

TEST_CASE("journal record: a BATCH loses its prepared ids, keeps its values and timestamp") {
  cql::BatchMsg b;
  b.type = cql::BatchType::kUnlogged;
  cql::BatchChild prepared;
  prepared.prepared = true;
  prepared.id = {std::byte{9}};
  prepared.values = {cql::Value::null()};
  cql::BatchChild simple;
  simple.query = "DELETE FROM ks.t WHERE k = 2";
  b.children = {prepared, simple};
  b.flags = cql::query_flag::kDefaultTimestamp;
  b.timestamp = 77;
  Bytes bb;
  cql::Writer bw(bb);
  b.encode(bw, 4);
  auto out = replayable_batch(bb, 0, 4, [](cql::BytesView id) -> std::optional<std::string> {
    if (id.size() == 1 && id[0] == std::byte{9}) return "INSERT INTO ks.t (k, v) VALUES (1, ?)";
    return std::nullopt;
  });
  REQUIRE(out);
  const Bytes ob = as_bytes(*out);
  cql::Reader br(ob);
  const auto decoded = cql::BatchMsg::decode(br, 4);
  REQUIRE(decoded.children.size() == 2);
  CHECK_FALSE(decoded.children[0].prepared);
  CHECK(decoded.children[0].query == "INSERT INTO ks.t (k, v) VALUES (1, ?)");
  CHECK(decoded.children[0].values.size() == 1);
  CHECK(decoded.children[1].query == "DELETE FROM ks.t WHERE k = 2");
  CHECK(decoded.timestamp == 77);
  CHECK(decoded.type == cql::BatchType::kUnlogged);
  // An id the cache no longer knows: nothing to journal.
  CHECK_FALSE(
      replayable_batch(bb, 0, 4, [](cql::BytesView) { return std::optional<std::string>(); }));
}
