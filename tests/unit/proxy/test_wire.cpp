#include <doctest/doctest.h>

#include "common/cql/messages.h"
#include "proxy/wire.h"

using namespace zdm;
using namespace zdm::proxy;
using cql::Bytes;
using cql::Consistency;

namespace {

template <class Msg>
Msg decoded(const Bytes& frame, uint8_t version) {
  cql::Reader r(cql::BytesView(frame).subspan(cql::kHeaderSize));
  return Msg::decode(r, version);
}

cql::QueryParameters params_with_serial() {
  cql::QueryParameters p;
  p.consistency = Consistency::kLocalQuorum;
  p.flags = cql::query_flag::kValues | cql::query_flag::kSerialConsistency;
  p.values = {cql::Value::of(Bytes{std::byte{0}, std::byte{0}, std::byte{0}, std::byte{7}})};
  p.serial_consistency = Consistency::kLocalSerial;
  return p;
}

}  // namespace

TEST_CASE("set_consistency changes a request's consistency, nothing else") {
  const auto one = static_cast<uint16_t>(Consistency::kOne);
  for (uint8_t v : {3, 4, 5}) {
    CAPTURE(v);
    cql::QueryMsg q{"INSERT INTO ks.t (k) VALUES (?)", params_with_serial()};
    Bytes f = cql::encode_message(v, false, 3, cql::Opcode::kQuery, q);
    REQUIRE(set_consistency(f, one));
    auto got = decoded<cql::QueryMsg>(f, v);
    CHECK(got.query == q.query);
    CHECK(got.params.consistency == Consistency::kOne);
    CHECK(got.params.serial_consistency == Consistency::kLocalSerial);
    CHECK(got.params.values.size() == 1);

    cql::ExecuteMsg e;
    e.id = Bytes(16, std::byte{0xab});
    if (v == 5) e.result_metadata_id = Bytes(16, std::byte{0xcd});
    e.params = params_with_serial();
    f = cql::encode_message(v, false, 4, cql::Opcode::kExecute, e);
    REQUIRE(set_consistency(f, one));
    auto ge = decoded<cql::ExecuteMsg>(f, v);
    CHECK(ge.id == e.id);
    CHECK(ge.params.consistency == Consistency::kOne);
    CHECK(ge.params.serial_consistency == Consistency::kLocalSerial);

    cql::BatchMsg b;
    b.type = cql::BatchType::kUnlogged;
    b.children.push_back(
        {false, "INSERT INTO ks.t (k) VALUES (?)", {}, params_with_serial().values});
    b.children.push_back({true, "", Bytes(16, std::byte{1}), {cql::Value::null()}});
    b.consistency = Consistency::kQuorum;
    b.flags = cql::query_flag::kSerialConsistency;
    b.serial_consistency = Consistency::kLocalSerial;
    f = cql::encode_message(v, false, 5, cql::Opcode::kBatch, b);
    REQUIRE(set_consistency(f, one));
    auto gb = decoded<cql::BatchMsg>(f, v);
    CHECK(gb.children.size() == 2);
    CHECK(gb.consistency == Consistency::kOne);
    CHECK(gb.serial_consistency == Consistency::kLocalSerial);
  }
  Bytes options = cql::encode_empty(4, false, 1, cql::Opcode::kOptions);
  CHECK_FALSE(set_consistency(options, one));
  // A body cut short before its consistency.
  cql::QueryMsg q{"SELECT * FROM ks.t", {}};
  Bytes f = cql::encode_message(4, false, 3, cql::Opcode::kQuery, q);
  Bytes cut(f.begin(), f.end() - 8);
  cut[8] = static_cast<std::byte>(static_cast<uint8_t>(cut.size() - cql::kHeaderSize));
  CHECK_THROWS_AS(set_consistency(cut, one), cql::ProtocolError);
}
