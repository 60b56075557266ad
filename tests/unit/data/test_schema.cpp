#include <doctest/doctest.h>

#include "data/schema.h"

using namespace zdm::data;

namespace {

// system_schema.columns of: CREATE TABLE ks.t (p int, q text, c1 int, c2 text, s text static,
// v text, tags set<text>, fl frozen<list<int>>, PRIMARY KEY ((p, q), c1, c2)) WITH CLUSTERING
// ORDER BY (c1 DESC)
std::vector<ColumnRow> rows() {
  return {{"ks", "t", "v", "regular", "text", "none", -1},
          {"ks", "t", "tags", "regular", "set<text>", "none", -1},
          {"ks", "t", "fl", "regular", "frozen<list<int>>", "none", -1},
          {"ks", "t", "c2", "clustering", "text", "asc", 1},
          {"ks", "t", "q", "partition_key", "text", "none", 1},
          {"ks", "t", "p", "partition_key", "int", "none", 0},
          {"ks", "t", "s", "static", "text", "none", -1},
          {"ks", "t", "c1", "clustering", "int", "desc", 0},
          {"ks", "other", "id", "partition_key", "int", "none", 0},
          {"ks2", "t", "id", "partition_key", "int", "none", 0}};
}

}  // namespace

TEST_CASE("a table from system_schema.columns") {
  auto t = table_schema(rows(), "ks", "t");
  REQUIRE(t);
  SUBCASE("keys by position, statics then regular columns by name") {
    REQUIRE(t->partition_key.size() == 2);
    CHECK(t->partition_key[0].name == "p");
    CHECK(t->partition_key[1].name == "q");
    REQUIRE(t->clustering.size() == 2);
    CHECK(t->clustering[0].name == "c1");
    CHECK(t->clustering[0].order == "desc");
    REQUIRE(t->values.size() == 4);
    CHECK(t->static_count == 1);
    CHECK(t->values[0].name == "s");
    CHECK(t->values[1].name == "fl");
    CHECK(t->values[2].name == "tags");
    CHECK(t->values[3].name == "v");
  }
  SUBCASE("non-frozen collections are multi-cell: no writetime() for them") {
    CHECK(t->values[2].multi_cell);
    CHECK(!t->values[2].timed());
    CHECK(!t->values[1].multi_cell);  // frozen
    CHECK(t->values[1].timed());
    CHECK(!t->counter_table());
  }
  SUBCASE("a table that is not there") {
    CHECK(!table_schema(rows(), "ks", "nope"));
    CHECK(keyspace_tables(rows(), "ks") == std::vector<std::string>{"other", "t"});
    CHECK(keyspace_tables(rows(), "nope").empty());
  }
}

TEST_CASE("the statements of a table") {
  auto t = *table_schema(rows(), "ks", "t");
  auto s = statements_of(t);
  auto l = layout_of(t);
  SUBCASE("the scan reads writetime and ttl of every timed column, by token range") {
    CHECK(s.scan ==
          "SELECT token(p, q), p, q, c1, c2, s, fl, tags, v, writetime(s), ttl(s), writetime(fl), "
          "ttl(fl), writetime(v), ttl(v) FROM ks.t WHERE token(p, q) > ? AND token(p, q) <= ?");
    CHECK(l.width == 15);
    CHECK(l.values == 5);
    CHECK(l.writetime(0) == 9);    // s
    CHECK(l.ttl(3) == 14);         // v
    CHECK(l.timed_slot[2] == -1);  // tags
  }
  SUBCASE("writes carry the cell's timestamp and TTL") {
    CHECK(s.insert_row ==
          "INSERT INTO ks.t (p, q, c1, c2, fl, tags, v) VALUES (?, ?, ?, ?, ?, ?, ?) USING "
          "TIMESTAMP ? AND TTL ?");
    CHECK(s.update_row ==
          "UPDATE ks.t USING TIMESTAMP ? AND TTL ? SET fl = ?, tags = ?, v = ? WHERE p = ? AND q "
          "= ? AND c1 = ? AND c2 = ?");
    CHECK(s.update_statics ==
          "UPDATE ks.t USING TIMESTAMP ? AND TTL ? SET s = ? WHERE p = ? AND q = ?");
    CHECK(s.delete_row ==
          "DELETE FROM ks.t USING TIMESTAMP ? WHERE p = ? AND q = ? AND c1 = ? AND c2 = ?");
    CHECK(s.delete_statics == "DELETE s FROM ks.t USING TIMESTAMP ? WHERE p = ? AND q = ?");
    CHECK(s.read_partition.ends_with(" FROM ks.t WHERE p = ? AND q = ? LIMIT 1"));
  }
  SUBCASE("counter tables add, and have no writetime") {
    std::vector<ColumnRow> c = {{"ks", "c", "id", "partition_key", "int", "none", 0},
                                {"ks", "c", "hits", "regular", "counter", "none", -1}};
    auto ct = *table_schema(c, "ks", "c");
    CHECK(ct.counter_table());
    auto cs = statements_of(ct);
    CHECK(cs.add_counters == "UPDATE ks.c SET hits = hits + ? WHERE id = ?");
    CHECK(cs.insert_row.empty());
    CHECK(cs.scan == "SELECT token(id), id, hits FROM ks.c WHERE token(id) > ? AND token(id) <= ?");
  }
  SUBCASE("identifiers that need quotes get them") {
    CHECK(quote("plain_1") == "plain_1");
    CHECK(quote("Mixed") == "\"Mixed\"");
    CHECK(quote("with\"quote") == "\"with\"\"quote\"");
    CHECK(quote("1st") == "\"1st\"");
  }
}

TEST_CASE("origin and target define a table alike") {
  auto o = *table_schema(rows(), "ks", "t");
  SUBCASE("the same definition: no difference") {
    CHECK(!schema_difference(o, o));
  }
  SUBCASE("each kind of difference in one phrase") {
    auto r = rows();
    r[0].type = "int";
    CHECK(*schema_difference(o, *table_schema(r, "ks", "t")) ==
          "column 'v' is text on origin, int on target");
    r = rows();
    r.erase(r.begin());
    CHECK(*schema_difference(o, *table_schema(r, "ks", "t")) == "column 'v' exists on origin only");
    r = rows();
    r.push_back({"ks", "t", "extra", "regular", "int", "none", -1});
    CHECK(*schema_difference(o, *table_schema(r, "ks", "t")) ==
          "column 'extra' exists on target only");
    r = rows();
    r[7].clustering_order = "asc";
    CHECK(*schema_difference(o, *table_schema(r, "ks", "t")) ==
          "clustering column 'c1' is ordered desc on origin, asc on target");
    r = rows();
    r[6].kind = "regular";
    CHECK(*schema_difference(o, *table_schema(r, "ks", "t")) ==
          "column 's' is a static column on origin, a regular column on target");
  }
}
