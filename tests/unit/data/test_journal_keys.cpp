#include <doctest/doctest.h>

#include <map>

#include "common/cql/messages.h"
#include "data/client/page.h"
#include "data/journal_keys.h"

using namespace zdm::data;
using namespace zdm::data::keys;
using zdm::cql::Value;
using zdm::data::int_bytes;

namespace {

// ks.kv (k int PRIMARY KEY, v text), ks.ev ((a, b), c, v), ks."Mixed" ("Id" text PRIMARY KEY).
const std::map<std::string, TableSchema>& tables() {
  static const std::map<std::string, TableSchema> t = [] {
    std::vector<ColumnRow> rows = {
        {"ks", "kv", "k", "partition_key", "int", "none", 0},
        {"ks", "kv", "v", "regular", "text", "none", -1},
        {"ks", "ev", "a", "partition_key", "int", "none", 0},
        {"ks", "ev", "b", "partition_key", "text", "none", 1},
        {"ks", "ev", "c", "clustering", "int", "asc", 0},
        {"ks", "ev", "v", "regular", "text", "none", -1},
        {"ks", "Mixed", "Id", "partition_key", "text", "none", 0},
        {"ks", "Mixed", "v", "regular", "int", "none", -1},
        {"other", "kv", "k", "partition_key", "uuid", "none", 0},
    };
    std::map<std::string, TableSchema> m;
    for (const auto& [ks, tb] : std::vector<std::pair<std::string, std::string>>{
             {"ks", "kv"}, {"ks", "ev"}, {"ks", "Mixed"}, {"other", "kv"}})
      m[ks + "." + tb] = *table_schema(rows, ks, tb);
    return m;
  }();
  return t;
}

const SchemaLookup kSchema = [](const std::string& ks,
                                const std::string& tb) -> const TableSchema* {
  auto it = tables().find(ks + "." + tb);
  return it == tables().end() ? nullptr : &it->second;
};

Value text(const std::string& s) {
  Bytes b;
  for (char c : s) b.push_back(static_cast<std::byte>(c));
  return Value::of(b);
}
Value int_value(int32_t v) {
  return Value::of(int_bytes(v));
}

Extracted run(std::string_view cql, std::vector<Value> values = {}, const std::string& ks = "ks") {
  return extract_statement(cql, values, ks, kSchema);
}

// The partitions as "ks.t[key text]" for easy comparison.
std::vector<std::string> keys_of(const Extracted& e) {
  std::vector<std::string> out;
  for (const auto& p : e.partitions)
    out.push_back(p.keyspace + "." + p.table + "[" +
                  key_text(tables().at(p.keyspace + "." + p.table), p) + "]");
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("journal keys: INSERT") {
  SUBCASE("literals, markers, unqualified names") {
    CHECK(keys_of(run("INSERT INTO kv (k, v) VALUES (42, 'x')")) == V{"ks.kv[k=42]"});
    CHECK(keys_of(run("insert into ks.kv (v, k) values (?, ?)", {text("x"), int_value(7)})) ==
          V{"ks.kv[k=7]"});
    auto e = run("INSERT INTO kv (k, v) VALUES (?, ?)", {int_value(5), text("x")});
    REQUIRE(e.partitions.size() == 1);
    CHECK(e.partitions[0].key[0].bound);
    CHECK(e.partitions[0].key[0].bytes == int_bytes(5));
    CHECK(e.unverifiable.empty());
  }
  SUBCASE("a composite key, nested collection literals, the order of the column list") {
    auto e =
        run("INSERT INTO ks.ev (c, v, b, a) VALUES (1, {'m': [1, 2]}, 'x''y', -3) USING TTL 5");
    CHECK(keys_of(e) == V{"ks.ev[a=-3, b='x''y']"});
    CHECK(where_clause(tables().at("ks.ev"), e.partitions[0]) == "a = -3 AND b = 'x''y'");
    CHECK(where_values(e.partitions[0]).empty());
  }
  SUBCASE("uuid, blob, $$ and float literals") {
    CHECK(keys_of(run("INSERT INTO other.kv (k) VALUES (123e4567-e89b-12d3-a456-426614174000)")) ==
          V{"other.kv[k=123e4567-e89b-12d3-a456-426614174000]"});
    CHECK(keys_of(run("INSERT INTO other.kv (k) VALUES (e89b4567-e89b-12d3-a456-426614174000)")) ==
          V{"other.kv[k=e89b4567-e89b-12d3-a456-426614174000]"});
    CHECK(keys_of(run("INSERT INTO kv (k, v) VALUES (0x0a, 'x')")) == V{"ks.kv[k=0x0a]"});
    CHECK(keys_of(run("INSERT INTO \"Mixed\" (\"Id\", v) VALUES ($$it's$$, 1)")) ==
          V{"ks.Mixed[Id=$$it's$$]"});
    CHECK(keys_of(run("INSERT INTO kv (k, v) VALUES (1.5e+3, 'x')")) == V{"ks.kv[k=1.5e+3]"});
  }
  SUBCASE("comments, new lines, a trailing semicolon") {
    auto e =
        run("-- a comment\nINSERT /* k, ? */ INTO kv // here\n (k,\n v) VALUES (\n 9 -- nine\n, "
            "'a?b');");
    CHECK(keys_of(e) == V{"ks.kv[k=9]"});
  }
  SUBCASE("markers in the values before the key, and in USING") {
    auto e = run("INSERT INTO ks.ev (v, c, a, b) VALUES (?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?",
                 {text("v"), int_value(1), int_value(2), text("bee"), int_value(5), int_value(6)});
    CHECK(keys_of(e) == V{"ks.ev[a=2, b='bee']"});
  }
  SUBCASE("a key from a function call cannot be checked") {
    auto e = run("INSERT INTO other.kv (k) VALUES (uuid())");
    CHECK(e.partitions.empty());
    CHECK(e.unverifiable == V{"other.kv: partition key 'k' from a function call (uuid())"});
    CHECK(run("INSERT INTO kv (k, v) VALUES (1, now())").unverifiable.empty());
  }
  SUBCASE("named markers bind positionally") {
    CHECK(keys_of(run("INSERT INTO kv (k, v) VALUES (:k, :v)", {int_value(3), text("x")})) ==
          V{"ks.kv[k=3]"});
    CHECK(keys_of(run("INSERT INTO kv (v, k) VALUES ({f:true}, :k)", {int_value(4)})) ==
          V{"ks.kv[k=4]"});
  }
  SUBCASE("INSERT JSON, null keys, missing values") {
    CHECK(run("INSERT INTO kv JSON '{\"k\": 1}'").unverifiable == V{"ks.kv: INSERT JSON"});
    CHECK(run("INSERT INTO kv (k, v) VALUES (null, 'x')").unverifiable ==
          V{"ks.kv: partition key 'k' is null"});
    CHECK(run("INSERT INTO kv (k, v) VALUES (?, ?)", {Value::null(), text("x")}).unverifiable ==
          V{"ks.kv: partition key 'k' bound to null"});
    CHECK(run("INSERT INTO kv (k, v) VALUES (?, ?)", {Value::unset(), text("x")}).unverifiable ==
          V{"ks.kv: partition key 'k' bound to unset"});
    CHECK(run("INSERT INTO kv (k, v) VALUES (?, ?)").unverifiable ==
          V{"ks.kv: fewer bound values than bind markers"});
    CHECK(run("INSERT INTO kv (k, v) VALUES ([?], 'x')", {int_value(1)}).unverifiable ==
          V{"ks.kv: partition key 'k' has a bind marker inside a literal"});
  }
}

TEST_CASE("journal keys: UPDATE and DELETE") {
  SUBCASE("markers in USING and SET count before WHERE") {
    auto e = run("UPDATE ks.kv USING TTL ? AND TIMESTAMP ? SET v = ? WHERE k = ?",
                 {int_value(1), int_value(2), text("x"), int_value(77)});
    CHECK(keys_of(e) == V{"ks.kv[k=77]"});
    e = run("UPDATE ev SET v = ?, v = v + {?: ?} WHERE a = ? AND b = 'q' AND c = ? IF v = ?",
            {text("x"), text("k"), text("v"), int_value(8), int_value(1), text("old")});
    CHECK(keys_of(e) == V{"ks.ev[a=8, b='q']"});
  }
  SUBCASE("IN lists: several partitions") {
    auto e =
        run("DELETE FROM ks.ev WHERE a IN (1, ?) AND b IN ('x', 'y') AND c = 3", {int_value(2)});
    CHECK(keys_of(e) ==
          V{"ks.ev[a=1, b='x']", "ks.ev[a=2, b='x']", "ks.ev[a=1, b='y']", "ks.ev[a=2, b='y']"});
    Bytes list = int_bytes(2);
    for (int v : {10, 11}) {
      auto len = int_bytes(4), b = int_bytes(v);
      list.insert(list.end(), len.begin(), len.end());
      list.insert(list.end(), b.begin(), b.end());
    }
    CHECK(keys_of(run("DELETE FROM kv WHERE k IN ?", {Value::of(list)})) ==
          V{"ks.kv[k=10]", "ks.kv[k=11]"});
    CHECK(run("DELETE FROM kv WHERE k IN ()").partitions.empty());
    CHECK(run("DELETE FROM kv WHERE k IN ?", {Value::of(int_bytes(5))}).unverifiable ==
          V{"ks.kv: a malformed list bound to IN ?"});
  }
  SUBCASE("DELETE with a selection, USING TIMESTAMP, quoted names") {
    CHECK(keys_of(run("DELETE v, m['k'], l[?] FROM ks.kv USING TIMESTAMP 5 WHERE k = ?",
                      {int_value(0), int_value(6)})) == V{"ks.kv[k=6]"});
    CHECK(keys_of(run("DELETE FROM \"Mixed\" WHERE \"Id\" = 'a'")) == V{"ks.Mixed[Id='a']"});
    CHECK(run("DELETE FROM mixed WHERE \"Id\" = 'a'").unverifiable ==
          V{"ks.mixed: the table is not in the schema"});
    CHECK(run("DELETE FROM \"Mixed\" WHERE id = 'a'").unverifiable ==
          V{"ks.Mixed: partition key 'Id' not restricted by = or IN"});
  }
  SUBCASE("relations it cannot use") {
    CHECK(run("DELETE FROM kv WHERE k > 1").unverifiable ==
          V{"ks.kv: partition key 'k' restricted by other than = or IN"});
    CHECK(run("DELETE FROM kv WHERE k = 1 AND k = 2").unverifiable ==
          V{"ks.kv: partition key 'k' restricted twice"});
    CHECK(run("UPDATE kv SET v = 'x'").unverifiable == V{"ks.kv: malformed statement (no WHERE)"});
    CHECK(run("UPDATE kv SET v = 'x' WHERE k = 1 AND").unverifiable ==
          V{"ks.kv: malformed WHERE clause"});
    CHECK(run("UPDATE kv SET v = 'x' WHERE k = token(1)").unverifiable ==
          V{"ks.kv: partition key 'k' from a function call (token())"});
    CHECK(run("UPDATE kv SET v = 'x' WHERE k = v").unverifiable ==
          V{"ks.kv: partition key 'k' is not a literal"});
  }
}

TEST_CASE("journal keys: BATCH text and statement sequences") {
  auto e =
      run("BEGIN UNLOGGED BATCH USING TIMESTAMP ?\n"
          "  INSERT INTO kv (k, v) VALUES (?, 'a');\n"
          "  UPDATE ks.ev SET v = ? WHERE a = 1 AND b = ? AND c = 2\n"
          "  DELETE FROM other.kv WHERE k = uuid();\n"
          "  INSERT INTO kv (k, v) VALUES (1, 'apply batch')\n"
          "APPLY BATCH;",
          {int_value(99), int_value(5), text("v"), text("bee")});
  CHECK(keys_of(e) == V{"ks.kv[k=5]", "ks.ev[a=1, b='bee']", "ks.kv[k=1]"});
  CHECK(e.unverifiable == V{"other.kv: partition key 'k' from a function call (uuid())"});
  CHECK(run("BEGIN BATCH INSERT INTO kv (k, v) VALUES (1, 'a')").unverifiable ==
        V{"malformed BATCH (no APPLY BATCH)"});
  auto empty = run("BEGIN COUNTER BATCH APPLY BATCH");
  CHECK((empty.partitions.empty() && empty.unverifiable.empty()));
}

TEST_CASE("journal keys: malformed text is unverifiable, never an exception") {
  CHECK(run("").unverifiable == V{"empty statement"});
  CHECK(run("SELECT * FROM kv").unverifiable == V{"not an INSERT, UPDATE or DELETE"});
  CHECK(run("INSERT INTO kv (k, v) VALUES ('abc").unverifiable == V{"unterminated string literal"});
  CHECK(run("INSERT INTO \"kv (k) VALUES (1)").unverifiable == V{"unterminated quoted identifier"});
  CHECK(run("INSERT INTO kv (k) VALUES ($$x)").unverifiable == V{"unterminated $$ string"});
  CHECK(run("INSERT /* INTO kv (k) VALUES (1)").unverifiable == V{"unterminated comment"});
  CHECK(run("INSERT INTO kv (k, v) VALUES (1)").unverifiable ==
        V{"ks.kv: malformed INSERT (2 columns, 1 values)"});
  CHECK(run("INSERT INTO kv (k, v) VALUES (1, 'a'").unverifiable ==
        V{"ks.kv: unbalanced brackets"});
  CHECK(run("INSERT INTO kv (k) VALUES (1))").partitions.size() == 1);
  CHECK(run("INSERT INTO kv (k) VALUES (1)", {}, "").unverifiable ==
        V{"kv: no keyspace (an unqualified name, none in use)"});
  CHECK(run("DELETE FROM kv WHERE k = 1)").unverifiable == V{"ks.kv: unbalanced brackets"});
  CHECK(run("INSERT INTO").unverifiable == V{"malformed statement (no table name)"});
  CHECK(run("DELETE kv").unverifiable == V{"malformed DELETE (no FROM)"});
  // Every prefix of a valid statement: no crash.
  const std::string full =
      "BEGIN BATCH INSERT INTO ks.ev (a, b, c) VALUES (?, 'x', {1: [2]}) USING TTL ?; DELETE FROM "
      "kv WHERE k IN (1, ?) APPLY BATCH";
  for (std::size_t n = 0; n <= full.size(); ++n) {
    auto e = run(full.substr(0, n), {int_value(1), int_value(2), int_value(3)});
    CHECK(e.partitions.size() + e.unverifiable.size() >= 1);
  }
}

TEST_CASE("journal keys: request bodies") {
  using namespace zdm::cql;
  auto body_of = [](const Bytes& frame) {
    return std::string(reinterpret_cast<const char*>(frame.data()) + 9, frame.size() - 9);
  };
  SUBCASE("a QUERY with values") {
    QueryMsg q;
    q.query = "INSERT INTO kv (k, v) VALUES (?, ?)";
    q.params.flags = query_flag::kValues;
    q.params.values = {int_value(12), text("x")};
    const std::string body = body_of(encode_message(4, false, 0, Opcode::kQuery, q));
    CHECK(keys_of(extract_body(4, 0x07, body, "ks", kSchema)) == V{"ks.kv[k=12]"});
    CHECK(extract_body(4, 0x07, body, "", kSchema).unverifiable ==
          V{"kv: no keyspace (an unqualified name, none in use)"});
    auto cut = extract_body(4, 0x07, body.substr(0, body.size() - 3), "ks", kSchema);
    REQUIRE(cut.unverifiable.size() == 1);
    CHECK(cut.unverifiable[0].rfind("the request body does not decode: ", 0) == 0);
    CHECK(extract_body(4, 0x0A, body, "ks", kSchema).unverifiable ==
          V{"opcode 10 is neither QUERY nor BATCH"});
  }
  SUBCASE("a BATCH of query strings and a prepared child") {
    BatchMsg b;
    BatchChild c1;
    c1.query = "INSERT INTO ks.kv (k, v) VALUES (?, ?)";
    c1.values = {int_value(1), text("a")};
    BatchChild c2;
    c2.prepared = true;
    c2.id = int_bytes(5);
    b.children = {c1, c2};
    const std::string body = body_of(encode_message(4, false, 0, Opcode::kBatch, b));
    auto e = extract_body(4, 0x0D, body, "", kSchema);
    CHECK(keys_of(e) == V{"ks.kv[k=1]"});
    CHECK(e.unverifiable == V{"a prepared statement in a BATCH"});
  }
}
