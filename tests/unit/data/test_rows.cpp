#include <doctest/doctest.h>

#include "data/rows.h"

using namespace zdm::data;

namespace {

// CREATE TABLE ks.r (p int, c int, s text static, v text, n bigint, tags set<text>,
// PRIMARY KEY (p, c)): values s, n, tags, v; timed s, n, v.
TableSchema table() {
  std::vector<ColumnRow> rows = {{"ks", "r", "p", "partition_key", "int", "none", 0},
                                 {"ks", "r", "c", "clustering", "int", "asc", 0},
                                 {"ks", "r", "s", "static", "text", "none", -1},
                                 {"ks", "r", "v", "regular", "text", "none", -1},
                                 {"ks", "r", "n", "regular", "bigint", "none", -1},
                                 {"ks", "r", "tags", "regular", "set<text>", "none", -1}};
  return *table_schema(rows, "ks", "r");
}

Bytes text(const char* s) {
  return zdm::cql::to_bytes(s);
}

struct Cell3 {
  std::optional<Bytes> value;
  std::optional<int64_t> writetime;
  std::optional<int32_t> ttl;
};

// A scanned row: token 42, p, c (nullopt: a static-only row), then s, n, tags, v.
OwnedRow make(int32_t p, std::optional<int32_t> c, Cell3 s, Cell3 n, std::optional<Bytes> tags,
              Cell3 v) {
  OwnedRow r(13);
  r[0] = bigint_bytes(42);
  r[1] = int_bytes(p);
  if (c) r[2] = int_bytes(*c);
  r[3] = s.value;
  r[4] = n.value;
  r[5] = tags;
  r[6] = v.value;
  int slot = 7;
  for (const Cell3* x : {&s, &n, &v}) {
    if (x->value && x->writetime) r[slot] = bigint_bytes(*x->writetime);
    if (x->value && x->ttl) r[slot + 1] = int_bytes(*x->ttl);
    slot += 2;
  }
  return r;
}

}  // namespace

TEST_CASE("the writes that put a row on target") {
  const auto t = table();
  const auto l = layout_of(t);
  REQUIRE(l.width == 13);
  SUBCASE("cells written together: one INSERT with their writetime and TTL") {
    auto r = make(1, 2, {}, {bigint_bytes(7), 100, 60}, std::nullopt, {text("x"), 100, 60});
    auto cells = view(r);
    auto g = plan_writes(t, l, cells, false, 5);
    REQUIRE(g.size() == 1);
    CHECK(g[0].kind == WriteGroup::Kind::kInsertRow);
    CHECK(g[0].timestamp == 100);
    CHECK(g[0].ttl == 60);
    CHECK(g[0].columns == std::vector<std::size_t>{1, 3});
  }
  SUBCASE("cells with different writetimes or TTLs: one statement each, the oldest an INSERT") {
    auto r =
        make(1, 2, {}, {bigint_bytes(7), 300, std::nullopt}, std::nullopt, {text("x"), 100, 60});
    auto cells = view(r);
    auto g = plan_writes(t, l, cells, false, 5);
    REQUIRE(g.size() == 2);
    CHECK(g[0].kind == WriteGroup::Kind::kInsertRow);
    CHECK(g[0].timestamp == 100);
    CHECK(g[0].columns == std::vector<std::size_t>{3});
    CHECK(g[1].kind == WriteGroup::Kind::kUpdateRow);
    CHECK(g[1].timestamp == 300);
    CHECK(g[1].ttl == 0);
    CHECK(g[1].columns == std::vector<std::size_t>{1});
  }
  SUBCASE("a collection takes the row's newest writetime and no TTL") {
    auto r =
        make(1, 2, {}, {bigint_bytes(7), 300, 50}, text("set"), {text("x"), 100, std::nullopt});
    auto cells = view(r);
    auto g = plan_writes(t, l, cells, false, 5);
    REQUIRE(g.size() == 3);
    CHECK(g[2].timestamp == 300);
    CHECK(g[2].ttl == 0);
    CHECK(g[2].columns == std::vector<std::size_t>{2});
    // ... and joins a group with that writetime and no TTL when there is one.
    auto r2 = make(1, 2, {}, {bigint_bytes(7), 300, std::nullopt}, text("set"), {});
    auto cells2 = view(r2);
    auto g2 = plan_writes(t, l, cells2, false, 5);
    REQUIRE(g2.size() == 1);
    CHECK(g2[0].columns == std::vector<std::size_t>{1, 2});
  }
  SUBCASE("a row with only a collection: the fallback timestamp") {
    auto r = make(1, 2, {}, {}, text("set"), {});
    auto cells = view(r);
    auto g = plan_writes(t, l, cells, false, 5);
    REQUIRE(g.size() == 1);
    CHECK(g[0].kind == WriteGroup::Kind::kInsertRow);
    CHECK(g[0].timestamp == 5);
  }
  SUBCASE("a row with only its primary key: the row marker alone") {
    auto r = make(1, 2, {text("st"), 9, std::nullopt}, {}, std::nullopt, {});
    auto cells = view(r);
    auto g = plan_writes(t, l, cells, false, 5);
    REQUIRE(g.size() == 1);
    CHECK(g[0].kind == WriteGroup::Kind::kInsertRow);
    CHECK(g[0].timestamp == 5);
    CHECK(g[0].columns.empty());
  }
  SUBCASE("static cells: UPDATEs of the partition") {
    auto r = make(1, std::nullopt, {text("st"), 9, 30}, {}, std::nullopt, {});
    auto cells = view(r);
    CHECK(statics_only(t, l, cells));
    auto g = plan_writes(t, l, cells, true, 5);
    REQUIRE(g.size() == 1);
    CHECK(g[0].kind == WriteGroup::Kind::kUpdateStatics);
    CHECK(g[0].timestamp == 9);
    CHECK(g[0].ttl == 30);
    auto plain = make(1, 2, {}, {}, std::nullopt, {});
    CHECK(plan_writes(t, l, view(plain), true, 5).empty());
  }
}

TEST_CASE("the values bound for a write") {
  const auto t = table();
  const auto l = layout_of(t);
  auto r = make(1, 2, {text("st"), 9, std::nullopt}, {bigint_bytes(7), 300, std::nullopt},
                std::nullopt, {text("x"), 100, 60});
  auto cells = view(r);
  auto g = plan_writes(t, l, cells, false, 5);
  REQUIRE(g.size() == 2);
  SUBCASE("INSERT: keys, the group's columns (others unset), timestamp, TTL") {
    std::size_t ttl_slot = 0;
    auto v = bind_group(t, l, cells, g[0], ttl_slot);
    REQUIRE(v.size() == 7);
    CHECK(v[0] == zdm::cql::Value::of(int_bytes(1)));
    CHECK(v[1] == zdm::cql::Value::of(int_bytes(2)));
    CHECK(v[2] == zdm::cql::Value::unset());  // n: another group
    CHECK(v[3] == zdm::cql::Value::unset());  // tags: null, never a tombstone
    CHECK(v[4] == zdm::cql::Value::of(text("x")));
    CHECK(v[5] == zdm::cql::Value::of(bigint_bytes(100)));
    CHECK(v[6] == zdm::cql::Value::of(int_bytes(60)));
    CHECK(ttl_slot == 6);
  }
  SUBCASE("UPDATE: timestamp, TTL, the group's columns, keys") {
    std::size_t ttl_slot = 0;
    auto v = bind_group(t, l, cells, g[1], ttl_slot);
    REQUIRE(v.size() == 7);
    CHECK(v[0] == zdm::cql::Value::of(bigint_bytes(300)));
    CHECK(v[1] == zdm::cql::Value::of(int_bytes(0)));
    CHECK(v[2] == zdm::cql::Value::of(bigint_bytes(7)));
    CHECK(v[3] == zdm::cql::Value::unset());
    CHECK(v[4] == zdm::cql::Value::unset());
    CHECK(v[5] == zdm::cql::Value::of(int_bytes(1)));
    CHECK(v[6] == zdm::cql::Value::of(int_bytes(2)));
    CHECK(ttl_slot == 1);
  }
}

TEST_CASE("comparing origin's and target's version of a row") {
  const auto t = table();
  const auto l = layout_of(t);
  auto o = make(1, 2, {text("st"), 9, std::nullopt}, {bigint_bytes(7), 300, std::nullopt},
                text("set"), {text("x"), 100, 60});
  SUBCASE("the same cells: no difference, with or without writetimes") {
    auto oc = view(o);
    CHECK(compare_rows(t, l, oc, oc, false, true).empty());
  }
  SUBCASE("a value differs: named, with both writetimes") {
    auto g = o;
    g[6] = text("y");
    g[11] = bigint_bytes(90);
    auto oc = view(o), gc = view(g);
    auto d = compare_rows(t, l, oc, gc, false, false);
    REQUIRE(d.size() == 1);
    CHECK(d[0].column == "v");
    CHECK(!d[0].writetime_only);
    CHECK(*d[0].origin_writetime == 100);
    CHECK(*d[0].target_writetime == 90);
  }
  SUBCASE("same value, older writetime: a difference only with --writetime") {
    auto g = o;
    g[9] = bigint_bytes(200);  // writetime(n)
    auto oc = view(o), gc = view(g);
    CHECK(compare_rows(t, l, oc, gc, false, false).empty());
    auto d = compare_rows(t, l, oc, gc, false, true);
    REQUIRE(d.size() == 1);
    CHECK(d[0].column == "n");
    CHECK(d[0].writetime_only);
  }
  SUBCASE("statics and rows are compared apart") {
    auto g = o;
    g[3] = text("other");
    auto oc = view(o), gc = view(g);
    CHECK(compare_rows(t, l, oc, gc, false, true).empty());
    CHECK(compare_rows(t, l, oc, gc, true, true).size() == 1);
  }
  SUBCASE("a collection compares by value") {
    auto g = o;
    g[5] = text("set2");
    auto oc = view(o), gc = view(g);
    auto d = compare_rows(t, l, oc, gc, false, true);
    REQUIRE(d.size() == 1);
    CHECK(d[0].column == "tags");
  }
}

TEST_CASE("keys of rows") {
  const auto t = table();
  const auto l = layout_of(t);
  auto ra = make(1, 2, {}, {}, std::nullopt, {});
  auto rb = make(1, 3, {}, {}, std::nullopt, {});
  auto a = view(ra);
  auto b = view(rb);
  SUBCASE("a partition's static part sorts before its rows") {
    CHECK(row_key(t, l, a, true) < row_key(t, l, a, false));
    CHECK(row_key(t, l, a, false) < row_key(t, l, b, false));
    CHECK(row_key(t, l, a, true) == row_key(t, l, b, true));
  }
  SUBCASE("as text: CQL literals") {
    CHECK(key_text(t, l, a, false) == "p=1, c=2");
    CHECK(key_text(t, l, a, true) == "p=1 (static columns)");
    CHECK(literal("text", text("it's")) == "'it''s'");
    CHECK(literal("int", int_bytes(-5)) == "-5");
    CHECK(literal("blob", text("\x01\xff")) == "0x01ff");
    auto uuid = Bytes(16, std::byte{0xab});
    CHECK(literal("uuid", uuid) == "abababab-abab-abab-abab-abababababab");
  }
}
