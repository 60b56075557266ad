#include "testcluster/bench_backend.h"

#include <doctest/doctest.h>

using namespace zdm;
using zdm::testcluster::BenchBackend;

namespace {

cql::ColumnSpec column(const char* name, cql::TypeId type) {
  return cql::ColumnSpec{"ks", "kv", name, cql::DataType::of(type)};
}

cql::ResultMsg prepared(const char* id, std::vector<cql::ColumnSpec> bound,
                        std::vector<uint16_t> pk, std::vector<cql::ColumnSpec> result) {
  cql::PreparedResult p;
  p.id = cql::to_bytes(id);
  p.metadata.columns = std::move(bound);
  p.metadata.pk_indices = std::move(pk);
  p.result_metadata.columns = std::move(result);
  p.result_metadata.column_count = static_cast<int32_t>(p.result_metadata.columns.size());
  return cql::ResultMsg{p};
}

cql::Bytes execute_body(const char* id, std::vector<cql::Value> values, uint32_t flags = 0) {
  cql::ExecuteMsg m;
  m.id = cql::to_bytes(id);
  m.params.values = std::move(values);
  m.params.flags = flags;
  cql::Bytes body;
  cql::Writer w(body);
  m.encode(w, 4);
  return body;
}

// Decodes a RESULT frame appended by execute().
cql::ResultMsg result_of(const cql::Bytes& frame, int16_t stream) {
  cql::Header h = cql::decode_header(cql::BytesView(frame.data(), cql::kHeaderSize));
  CHECK(h.response);
  CHECK(h.stream == stream);
  CHECK(h.opcode == cql::Opcode::kResult);
  CHECK(h.length == frame.size() - cql::kHeaderSize);
  cql::Reader r(cql::BytesView(frame).subspan(cql::kHeaderSize));
  auto m = cql::ResultMsg::decode(r, 4);
  CHECK(r.remaining() == 0);
  return m;
}

}  // namespace

TEST_CASE("BenchBackend") {
  BenchBackend b;
  b.learn(
      "SELECT v FROM ks.kv WHERE k = ?",
      prepared("sel", {column("k", cql::TypeId::kBigint)}, {0}, {column("v", cql::TypeId::kBlob)}),
      4);
  b.learn("insert into ks.kv (v, k) values (?, ?)",
          prepared("ins", {column("v", cql::TypeId::kBlob), column("k", cql::TypeId::kBigint)}, {1},
                   {}),
          4);
  CHECK(b.statements() == 2);
  const auto key = cql::Value::of(cql::to_bytes("12345678"));

  SUBCASE("a read of a key never written answers Rows with no row") {
    cql::Bytes out;
    REQUIRE(b.execute(4, 5, execute_body("sel", {key}), out));
    auto rows = std::get<cql::RowsResult>(result_of(out, 5).body);
    CHECK(rows.rows.empty());
    CHECK(rows.metadata.columns.size() == 1);  // full metadata: no skip-metadata flag
  }
  SUBCASE("a write answers Void; a read then returns the value written (key at pk index 1)") {
    cql::Bytes out;
    REQUIRE(
        b.execute(4, 1, execute_body("ins", {cql::Value::of(cql::to_bytes("hello")), key}), out));
    CHECK(result_of(out, 1).kind() == cql::ResultKind::kVoid);
    out.clear();
    REQUIRE(b.execute(4, 2, execute_body("sel", {key}, cql::query_flag::kSkipMetadata), out));
    auto rows = std::get<cql::RowsResult>(result_of(out, 2).body);
    CHECK((rows.metadata.flags & cql::rows_flag::kNoMetadata) != 0);
    REQUIRE(rows.rows.size() == 1);
    CHECK(rows.rows[0][0] == cql::to_bytes("hello"));
  }
  SUBCASE("answers append: the frames of one read go out as one buffer") {
    cql::Bytes out;
    REQUIRE(b.execute(4, 1, execute_body("sel", {key}), out));
    std::size_t first = out.size();
    REQUIRE(b.execute(4, 2, execute_body("sel", {key}), out));
    CHECK(out.size() == 2 * first);
  }
  SUBCASE("what the fast path does not serve is left to the store") {
    cql::Bytes out;
    CHECK_FALSE(b.execute(4, 1, execute_body("other", {key}), out));  // an unknown id
    CHECK_FALSE(b.execute(4, 1, execute_body("sel", {cql::Value::null()}), out));
    CHECK_FALSE(b.execute(4, 1, execute_body("sel", {key, key}), out));
    CHECK_FALSE(b.execute(4, 1, execute_body("sel", {}), out));
    cql::Bytes cut = execute_body("sel", {key});
    cut.resize(cut.size() - 3);
    CHECK_FALSE(b.execute(4, 1, cut, out));
    CHECK(out.empty());
  }
  SUBCASE("other statement shapes are not learnt") {
    BenchBackend c;
    c.learn(
        "SELECT v FROM ks.kv WHERE k = ? AND c = 1",
        prepared("x", {column("k", cql::TypeId::kBigint)}, {0}, {column("v", cql::TypeId::kBlob)}),
        4);
    c.learn("SELECT k FROM ks.kv WHERE k = ?",
            prepared("y", {column("k", cql::TypeId::kBigint)}, {0},
                     {column("k", cql::TypeId::kBigint)}),
            4);
    c.learn("UPDATE ks.kv SET v = ? WHERE k = ?",
            prepared("z", {column("v", cql::TypeId::kBlob), column("k", cql::TypeId::kBigint)}, {1},
                     {}),
            4);
    CHECK(c.statements() == 0);
  }
}

TEST_CASE("BenchBackend compressed answers") {
  BenchBackend b;
  b.learn(
      "SELECT v FROM ks.kv WHERE k = ?",
      prepared("sel", {column("k", cql::TypeId::kBigint)}, {0}, {column("v", cql::TypeId::kBlob)}),
      4);
  const auto key = cql::Value::of(cql::to_bytes("12345678"));
  for (auto c : {cql::Compression::kLz4, cql::Compression::kSnappy}) {
    CAPTURE(cql::compression_name(c));
    cql::Bytes plain, packed = cql::to_bytes("x");  // appended after what is there
    REQUIRE(b.execute(4, 3, execute_body("sel", {key}), plain));
    REQUIRE(b.execute(4, 3, execute_body("sel", {key}), packed, c));
    cql::Header h = cql::decode_header(cql::BytesView(packed).subspan(1, cql::kHeaderSize));
    CHECK(h.flags == cql::flag::kCompression);
    CHECK(h.stream == 3);
    CHECK(h.length == packed.size() - 1 - cql::kHeaderSize);
    CHECK(cql::decompress_body(c, cql::BytesView(packed).subspan(1 + cql::kHeaderSize)) ==
          cql::Bytes(plain.begin() + cql::kHeaderSize, plain.end()));
  }
}
