// zdm-testcluster's storage model: Murmur3 tokens as Cassandra and the drivers compute them, and
// cells reconciled last-write-wins as Cassandra's Cells.reconcile does.
#include <doctest/doctest.h>

#include "testcluster/schema.h"
#include "testcluster/table.h"
#include "tests/unit/cql/cql_test_util.h"

using namespace zdm::testcluster;
using zdm::cql::test::bytes;
using zdm::cql::test::text;

TEST_CASE("Murmur3 tokens are the DataStax python-driver's (cassandra.murmur3)") {
  // Computed with /usr/bin/python3 -c 'from cassandra.murmur3 import murmur3; print(murmur3(k))'.
  CHECK(murmur3_token(Bytes{}) == 0);
  CHECK(murmur3_token(text("a")) == -8839064797231613815LL);
  CHECK(murmur3_token(text("hello")) == -3758069500696749310LL);
  CHECK(murmur3_token(text("0123456789abcdef")) == 5467490433528156583LL);      // one block
  CHECK(murmur3_token(text("0123456789abcdefXYZ")) == -7362412312553418723LL);  // block + tail
  // Tail bytes >= 0x80 are sign-extended, as Cassandra's Java bytes are.
  CHECK(murmur3_token(bytes({0xff, 0x80, 0x7f, 0x01, 0xfe})) == -3854461416018644599LL);
}

TEST_CASE("a composite partition key is hashed as CompositeType") {
  CHECK(partition_key_bytes({text("a")}) == text("a"));
  CHECK(partition_key_bytes({text("ab"), bytes({7})}) ==
        bytes({0x00, 0x02, 'a', 'b', 0x00,  // length, "ab", end of component
               0x00, 0x01, 0x07, 0x00}));
}

TEST_CASE("cells: last write wins") {
  CellData c;
  write_cell(c, text("b"), WriteTime{100, 0, 0});
  SUBCASE("a newer write wins, an older one loses") {
    write_cell(c, text("a"), WriteTime{99, 0, 0});
    CHECK(c.value == text("b"));
    write_cell(c, text("a"), WriteTime{101, 0, 0});
    CHECK(c.value == text("a"));
  }
  SUBCASE("on equal write times the tombstone wins, then the greater value") {
    write_cell(c, text("a"), WriteTime{100, 0, 0});
    CHECK(c.value == text("b"));
    write_cell(c, text("c"), WriteTime{100, 0, 0});
    CHECK(c.value == text("c"));
    write_cell(c, std::nullopt, WriteTime{100, 0, 0});
    CHECK(c.tombstone);
  }
  SUBCASE("a TTL expires at now + ttl") {
    write_cell(c, text("t"), WriteTime{200, 10, 1000});
    CHECK(c.live(1009));
    CHECK_FALSE(c.live(1010));
  }
}

TEST_CASE("rows: deletions shadow older writes only") {
  Table t;
  t.columns = {make_column("k", "int", ColumnKind::kPartitionKey, 0),
               make_column("c", "int", ColumnKind::kClustering, 0),
               make_column("l", "list<int>", ColumnKind::kRegular),
               make_column("v", "text", ColumnKind::kRegular)};
  t.pk_count = 1;
  t.ck_count = 1;
  t.clustering = {{t.columns[1].type, false}};
  PartitionData& p = t.partition({bytes({0, 0, 0, 1})});
  Key ck{bytes({0, 0, 0, 2})};
  RowData& row = t.row(p, ck);
  write_marker(row, WriteTime{10, 0, 0});
  write_cell(t.slot(row, 3).cell, text("old"), WriteTime{10, 0, 0});
  delete_row(row, 15);
  CHECK_FALSE(row_live(t, row, shadowing(t, p, ck, row), 0));
  write_cell(t.slot(row, 3).cell, text("new"), WriteTime{20, 0, 0});
  CHECK(row_live(t, row, shadowing(t, p, ck, row), 0));
  CHECK(read_slot(t, 3, row, shadowing(t, p, ck, row), 0) == text("new"));

  SUBCASE("lists keep appends after, prepends before") {
    Slot& s = t.slot(row, 2);
    const Column& col = t.columns[2];
    write_collection(s, col, {{list_key(false), bytes({0, 0, 0, 2})}}, WriteTime{30, 0, 0}, false);
    write_collection(s, col, {{list_key(false), bytes({0, 0, 0, 3})}}, WriteTime{31, 0, 0}, false);
    write_collection(s, col, {{list_key(true), bytes({0, 0, 0, 1})}}, WriteTime{32, 0, 0}, false);
    auto elems = live_elements(t, 2, row, kNoTimestamp, 0);
    REQUIRE(elems.size() == 3);
    CHECK(elems[0].second == bytes({0, 0, 0, 1}));
    CHECK(elems[2].second == bytes({0, 0, 0, 3}));
    delete_partition(t, p, 31);
    CHECK(live_elements(t, 2, t.row(p, ck), p.deleted_at, 0).size() == 1);  // the prepend at 32
  }
}
