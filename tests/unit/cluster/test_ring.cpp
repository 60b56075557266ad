// zdm-testcluster's replicas and the fault admin's stopped nodes: Murmur3 tokens as Cassandra
// (and the DataStax drivers) compute them, UNAVAILABLE where a stopped node held the replicas.
#include <doctest/doctest.h>

#include "tests/cluster/store.h"

using namespace zdm::testcluster;
using zdm::cql::Bytes;
using zdm::cql::Consistency;
using zdm::cql::ErrorCode;

namespace {

Bytes bytes(std::initializer_list<int> v) {
  Bytes out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

Bytes text(const std::string& s) {
  Bytes out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

ClusterInfo three_nodes() {
  ClusterInfo info;
  info.nodes = make_nodes({"127.0.2.1", "127.0.2.2", "127.0.2.3"});
  return info;
}

struct Cluster {
  Store store{three_nodes()};
  Session session;

  Outcome run(const std::string& cql, Consistency cl = Consistency::kOne, std::size_t node = 0) {
    zdm::cql::QueryMsg q;
    q.query = cql;
    q.params.consistency = cl;
    return store.query(node, session, q);
  }
  // Nullopt when it succeeded, else the error.
  std::optional<zdm::cql::ErrorMsg> error(const std::string& cql,
                                          Consistency cl = Consistency::kOne,
                                          std::size_t node = 0) {
    Outcome o = run(cql, cl, node);
    if (auto* e = std::get_if<zdm::cql::ErrorMsg>(&o.response)) return *e;
    return std::nullopt;
  }
};

}  // namespace

TEST_CASE("Murmur3 tokens are the DataStax python-driver's (cassandra.murmur3)") {
  // Computed with /usr/bin/python3 -c 'from cassandra.murmur3 import murmur3; print(murmur3(k))'.
  CHECK(murmur3_token(Bytes{}) == 0);
  CHECK(murmur3_token(text("a")) == -8839064797231613815LL);
  CHECK(murmur3_token(text("hello")) == -3758069500696749310LL);
  CHECK(murmur3_token(text("0123456789abcdef")) == 5467490433528156583LL);      // one block
  CHECK(murmur3_token(text("0123456789abcdefXYZ")) == -7362412312553418723LL);  // block + tail
  // Tail bytes >= 0x80 are sign-extended, as Cassandra's Java bytes are.
  CHECK(murmur3_token(bytes({0xff, 0x80, 0x7f, 0x01, 0xfe})) == -3854461416018644599LL);
  Bytes b31;
  for (int i = 200; i < 231; ++i) b31.push_back(static_cast<std::byte>(i));
  CHECK(murmur3_token(b31) == 4398332801500074197LL);
}

TEST_CASE("a composite partition key is hashed as CompositeType") {
  CHECK(partition_key_bytes({text("a")}) == text("a"));
  CHECK(partition_key_bytes({text("ab"), bytes({7})}) ==
        bytes({0x00, 0x02, 'a', 'b', 0x00,  // length, "ab", end of component
               0x00, 0x01, 0x07, 0x00}));
}

TEST_CASE("a stopped node: UNAVAILABLE for the partitions it holds, as a coordinator answers") {
  Cluster c;
  REQUIRE(
      !c.error("CREATE KEYSPACE rf1 WITH replication = {'class': 'SimpleStrategy', "
               "'replication_factor': 1}"));
  REQUIRE(
      !c.error("CREATE KEYSPACE rf3 WITH replication = {'class': "
               "'NetworkTopologyStrategy', 'dc1': 3}"));
  REQUIRE(!c.error("CREATE TABLE rf1.t (id int PRIMARY KEY, v text)"));
  REQUIRE(!c.error("CREATE TABLE rf3.t (id int PRIMARY KEY, v text)"));
  for (int id = 0; id < 60; ++id)
    REQUIRE(!c.error("INSERT INTO rf1.t (id, v) VALUES (" + std::to_string(id) + ", 'x')"));

  c.store.set_node_up(1, false);
  CHECK_FALSE(c.store.node_up(1));
  int failed = 0;
  for (int id = 0; id < 60; ++id) {
    auto e = c.error("INSERT INTO rf1.t (id, v) VALUES (" + std::to_string(id) + ", 'y')");
    if (!e) continue;
    ++failed;
    CHECK(e->code == ErrorCode::kUnavailable);
    CHECK(e->message == "Cannot achieve consistency level ONE");
    CHECK(e->extra == bytes({0x00, 0x01,                 // consistency ONE
                             0x00, 0x00, 0x00, 0x01,     // required 1
                             0x00, 0x00, 0x00, 0x00}));  // alive 0
    // Reads of that partition fail the same way; the row is still there for later.
    auto r = c.error("SELECT v FROM rf1.t WHERE id = " + std::to_string(id));
    CHECK((r && r->code == ErrorCode::kUnavailable));
  }
  CHECK_MESSAGE(failed > 5, "about a third of 60 partitions belong to node 2");
  CHECK_MESSAGE(failed < 40, failed);
  auto scan = c.error("SELECT * FROM rf1.t");
  CHECK((scan && scan->code == ErrorCode::kUnavailable));
  CHECK_FALSE(c.error("SELECT * FROM system.local"));  // local tables need no replica

  SUBCASE("with three replicas, ONE and QUORUM still succeed; ALL does not") {
    CHECK_FALSE(c.error("INSERT INTO rf3.t (id, v) VALUES (1, 'x')", Consistency::kOne));
    CHECK_FALSE(c.error("INSERT INTO rf3.t (id, v) VALUES (1, 'x')", Consistency::kLocalQuorum));
    auto all = c.error("INSERT INTO rf3.t (id, v) VALUES (1, 'x')", Consistency::kAll);
    CHECK((all && all->code == ErrorCode::kUnavailable &&
           all->message == "Cannot achieve consistency level ALL"));
  }
  SUBCASE("started again, every partition answers") {
    c.store.set_node_up(1, true);
    for (int id = 0; id < 60; ++id)
      CHECK_FALSE(c.error("INSERT INTO rf1.t (id, v) VALUES (" + std::to_string(id) + ", 'z')"));
    CHECK_FALSE(c.error("SELECT * FROM rf1.t"));
  }
}
