// zdm-testcluster's system tables as drivers read them at a schema refresh.
#include <doctest/doctest.h>

#include "testcluster/store.h"

using namespace zdm::testcluster;

namespace {

Outcome select(Store& store, const std::string& cql) {
  Session session;
  zdm::cql::QueryMsg q;
  q.query = cql;
  return store.query(0, session, q);
}

}  // namespace

TEST_CASE("system_virtual_schema: Cassandra 4 lists its virtual keyspaces; 3.11 has none") {
  ClusterInfo info;
  info.nodes = make_nodes({"127.0.2.1"});
  info.release_version = "4.1.5";
  Store four(info);
  // The python-driver's SchemaParserV4 reads these three at every refresh.
  Outcome ks = select(four, "SELECT * FROM system_virtual_schema.keyspaces");
  auto* rows = std::get_if<zdm::cql::ResultMsg>(&ks.response);
  REQUIRE(rows);
  auto* r = std::get_if<zdm::cql::RowsResult>(&rows->body);
  REQUIRE(r);
  CHECK(r->rows.size() == 2);
  for (const char* t : {"tables", "columns"}) {
    Outcome o = select(four, std::string("SELECT * FROM system_virtual_schema.") + t);
    CHECK_MESSAGE(std::holds_alternative<zdm::cql::ResultMsg>(o.response), t);
  }
  info.release_version = "3.11.16";
  Store three(info);
  Outcome old = select(three, "SELECT * FROM system_virtual_schema.keyspaces");
  CHECK(std::holds_alternative<zdm::cql::ErrorMsg>(old.response));
}
