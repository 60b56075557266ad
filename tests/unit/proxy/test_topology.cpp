#include <doctest/doctest.h>

#include "proxy/topology.h"

using namespace zdm::proxy;
namespace cql = zdm::cql;

namespace {

std::string hex(const cql::Bytes& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto x : b) {
    auto v = std::to_integer<unsigned>(x);
    s += d[v >> 4];
    s += d[v & 15];
  }
  return s;
}

cql::Bytes int_bytes(int32_t v) {
  cql::Bytes out;
  cql::Writer(out).write_int(v);
  return out;
}

SystemSnapshot snapshot() {
  SystemSnapshot s;
  auto col = [](const char* n, cql::TypeId t) {
    return cql::ColumnSpec{"system", "local", n, cql::DataType::of(t)};
  };
  cql::DataType tokens{
      cql::TypeId::kSet, {}, {cql::DataType::of(cql::TypeId::kVarchar)}, {}, {}, {}};
  s.local.metadata.columns = {col("key", cql::TypeId::kVarchar),
                              col("cluster_name", cql::TypeId::kVarchar),
                              col("data_center", cql::TypeId::kVarchar),
                              col("host_id", cql::TypeId::kUuid),
                              col("rpc_address", cql::TypeId::kInet),
                              col("release_version", cql::TypeId::kVarchar),
                              col("schema_version", cql::TypeId::kUuid),
                              cql::ColumnSpec{"system", "local", "tokens", tokens}};
  s.local.metadata.column_count = 8;
  s.local.rows.push_back({cql::to_bytes("local"), cql::to_bytes("origin"), cql::to_bytes("dc1"),
                          cql::Bytes(16, std::byte{1}),
                          cql::Bytes{std::byte{10}, {}, {}, std::byte{1}}, cql::to_bytes("3.11.16"),
                          cql::Bytes(16, std::byte{7}), std::nullopt});
  return s;
}

VirtualTopology topo() {
  VirtualTopology t;
  t.addresses = {"127.0.1.1", "127.0.1.2", "127.0.1.3"};
  t.index = 1;
  t.num_tokens = 2;
  t.port = 9042;
  return t;
}

}  // namespace

TEST_CASE("virtual tokens split the Murmur3 ring evenly between proxies") {
  // (2^64/(t·n))·(k·n+i) − 2^63 with t=2, n=3: step floor(2^64/6) = 3074457345618258602.
  auto t0 = virtual_tokens(0, 3, 2);
  CHECK(t0 == std::vector<std::string>{"-9223372036854775808", "-2"});
  auto t1 = virtual_tokens(1, 3, 2);
  CHECK(t1 == std::vector<std::string>{"-6148914691236517206", "3074457345618258600"});
  CHECK(virtual_tokens(2, 3, 8).size() == 8);
}

TEST_CASE("virtual host ids are UUIDv5 of the IPv4-mapped address") {
  cql::Bytes id = virtual_host_id("127.0.1.1");
  REQUIRE(id.size() == 16);
  CHECK((std::to_integer<unsigned>(id[6]) >> 4) == 5);       // version 5
  CHECK((std::to_integer<unsigned>(id[8]) & 0xc0) == 0x80);  // RFC 4122 variant
  CHECK(hex(id) == hex(virtual_host_id("127.0.1.1")));
  CHECK(hex(id) != hex(virtual_host_id("127.0.1.2")));
}

TEST_CASE("system.local is answered with this proxy's address") {
  auto info = cql::classify("SELECT * FROM system.local WHERE key='local'");
  auto answer = answer_system_select(LocalTable::kSystemLocal, info, snapshot(), topo());
  REQUIRE(std::holds_alternative<cql::RowsResult>(answer));
  const auto& rows = std::get<cql::RowsResult>(answer);
  REQUIRE(rows.rows.size() == 1);
  REQUIRE(rows.metadata.columns.size() == 8);
  CHECK(hex(*rows.rows[0][4]) == "7f000102");        // rpc_address 127.0.1.2
  CHECK(cql::to_string(*rows.rows[0][2]) == "dc1");  // data_center from origin
  CHECK(hex(*rows.rows[0][3]) == hex(virtual_host_id("127.0.1.2")));
  CHECK(rows.rows[0][7].has_value());  // tokens
}

TEST_CASE("system.peers lists the other proxies") {
  auto info =
      cql::classify("SELECT peer, host_id, rpc_address AS addr, schema_version FROM system.peers");
  auto answer = answer_system_select(LocalTable::kSystemPeers, info, snapshot(), topo());
  REQUIRE(std::holds_alternative<cql::RowsResult>(answer));
  const auto& rows = std::get<cql::RowsResult>(answer);
  REQUIRE(rows.rows.size() == 2);
  CHECK(rows.metadata.columns[2].name == "addr");
  CHECK(hex(*rows.rows[0][0]) == "7f000101");
  CHECK(hex(*rows.rows[1][0]) == "7f000103");
  CHECK(hex(*rows.rows[1][3]) == "07070707070707070707070707070707");  // origin's schema_version
}

TEST_CASE("count(*), unknown columns and peers_v2") {
  auto count =
      answer_system_select(LocalTable::kSystemPeers,
                           cql::classify("SELECT count(*) FROM system.peers"), snapshot(), topo());
  REQUIRE(std::holds_alternative<cql::RowsResult>(count));
  CHECK(hex(*std::get<cql::RowsResult>(count).rows[0][0]) == "0000000000000002");
  auto bad = answer_system_select(
      LocalTable::kSystemLocal, cql::classify("SELECT nope FROM system.local"), snapshot(), topo());
  REQUIRE(std::holds_alternative<cql::ErrorMsg>(bad));
  CHECK(std::get<cql::ErrorMsg>(bad).message == "Undefined column name nope");
  auto v2 = answer_system_select(
      LocalTable::kSystemPeersV2,
      cql::classify("SELECT peer, native_address, native_port FROM system.peers_v2"), snapshot(),
      topo());
  REQUIRE(std::holds_alternative<cql::RowsResult>(v2));
  const auto& rows = std::get<cql::RowsResult>(v2);
  REQUIRE(rows.rows.size() == 2);
  CHECK(hex(*rows.rows[0][1]) == "7f000101");            // native_address: the proxy
  CHECK(hex(*rows.rows[0][2]) == hex(int_bytes(9042)));  // native_port: its listen port
}

TEST_CASE("WHERE on system tables") {
  auto f = parse_system_filter("SELECT * FROM system.peers WHERE peer = '127.0.1.3'");
  REQUIRE(f);
  CHECK(f->column == "peer");
  CHECK(f->literal == "127.0.1.3");
  CHECK(f->marker == -1);
  auto m = parse_system_filter("select rpc_address from system.peers where peer=?");
  REQUIRE(m);
  CHECK(m->marker == 0);
  CHECK(!parse_system_filter("SELECT * FROM system.peers"));
  auto k = parse_system_filter("SELECT * FROM system.local WHERE key='local'");
  REQUIRE(k);
  CHECK(k->literal == "local");
  auto one =
      answer_system_select(LocalTable::kSystemPeers,
                           cql::classify("SELECT peer FROM system.peers WHERE peer = '127.0.1.3'"),
                           snapshot(), topo(), "peer", filter_value("peer", "127.0.1.3"));
  REQUIRE(std::holds_alternative<cql::RowsResult>(one));
  REQUIRE(std::get<cql::RowsResult>(one).rows.size() == 1);
  CHECK(hex(*std::get<cql::RowsResult>(one).rows[0][0]) == "7f000103");
  auto none =
      answer_system_select(LocalTable::kSystemPeers, cql::classify("SELECT peer FROM system.peers"),
                           snapshot(), topo(), "peer", filter_value("peer", "10.9.9.9"));
  CHECK(std::get<cql::RowsResult>(none).rows.empty());
  CHECK_THROWS_AS(filter_value("peer", "not-an-ip"), std::invalid_argument);
}
