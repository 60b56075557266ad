#include "tests/bench/workload.h"

#include <doctest/doctest.h>

#include "common/cql/messages.h"

using namespace zdm;
using namespace zdm::bench;

namespace {

const Bytes kSelectId = cql::to_bytes("0123456789abcdef");
const Bytes kInsertId = cql::to_bytes("fedcba9876543210");

cql::ExecuteMsg decode_execute(const Bytes& frame, cql::Compression c, cql::Header& h) {
  h = cql::decode_header(BytesView(frame.data(), cql::kHeaderSize));
  REQUIRE(h.length == frame.size() - cql::kHeaderSize);
  Bytes body(frame.begin() + cql::kHeaderSize, frame.end());
  if (h.flags & cql::flag::kCompression) body = cql::decompress_body(c, body);
  cql::Reader r(body);
  auto m = cql::ExecuteMsg::decode(r, h.version);
  CHECK(r.remaining() == 0);
  return m;
}

Bytes be64(int64_t v) {
  Bytes b(8);
  put_be64(b.data(), static_cast<uint64_t>(v));
  return b;
}

}  // namespace

TEST_CASE("RequestBuilder") {
  SUBCASE("a read is an EXECUTE of the SELECT id with the key, skip-metadata and page size 5000") {
    RequestBuilder b(4, cql::Compression::kNone, kSelectId, kInsertId, 32);
    Bytes out;
    b.append(Op::kRead, 77, 123456789, 0, out);
    cql::Header h;
    auto m = decode_execute(out, cql::Compression::kNone, h);
    CHECK(h.version == 4);
    CHECK(h.stream == 77);
    CHECK(h.opcode == cql::Opcode::kExecute);
    CHECK(h.flags == 0);
    CHECK(m.id == kSelectId);
    CHECK(m.params.consistency == cql::Consistency::kLocalOne);
    using namespace cql::query_flag;
    CHECK(m.params.flags == (kValues | kSkipMetadata | kPageSize));
    CHECK(m.params.page_size == 5000);
    REQUIRE(m.params.values.size() == 1);
    CHECK(m.params.values[0].bytes == be64(123456789));
  }
  SUBCASE("a write carries the key, the value and the client timestamp") {
    RequestBuilder b(4, cql::Compression::kNone, kSelectId, kInsertId, 5);
    Bytes out;
    b.append(Op::kWrite, 3, -2, 1700000000123456, out);
    cql::Header h;
    auto m = decode_execute(out, cql::Compression::kNone, h);
    CHECK(m.id == kInsertId);
    using namespace cql::query_flag;
    CHECK(m.params.flags == (kValues | kDefaultTimestamp));
    CHECK(m.params.timestamp == 1700000000123456);
    REQUIRE(m.params.values.size() == 2);
    CHECK(m.params.values[0].bytes == be64(-2));
    CHECK(m.params.values[1].bytes == cql::to_bytes("abcde"));
  }
  SUBCASE("frames append: many requests in one buffer, each whole") {
    RequestBuilder b(3, cql::Compression::kNone, kSelectId, kInsertId, 8);
    Bytes out;
    for (int i = 0; i < 10; ++i)
      b.append(i % 2 ? Op::kWrite : Op::kRead, static_cast<int16_t>(i), i, i, out);
    cql::FrameDecoder d;
    d.feed(out);
    cql::Frame f;
    int n = 0;
    while (d.next(f)) {
      CHECK(f.header.stream == n);
      CHECK(f.header.version == 3);
      ++n;
    }
    CHECK(n == 10);
  }
  SUBCASE("with LZ4 the body is compressed as v4 §5 says and decodes to the same request") {
    RequestBuilder plain(4, cql::Compression::kNone, kSelectId, kInsertId, 64);
    RequestBuilder lz4(4, cql::Compression::kLz4, kSelectId, kInsertId, 64);
    Bytes a, c;
    plain.append(Op::kWrite, 9, 42, 99, a);
    lz4.append(Op::kWrite, 9, 42, 99, c);
    cql::Header ha, hc;
    auto ma = decode_execute(a, cql::Compression::kNone, ha);
    auto mc = decode_execute(c, cql::Compression::kLz4, hc);
    CHECK(hc.flags == cql::flag::kCompression);
    CHECK(mc.params.values == ma.params.values);
    CHECK(mc.params.timestamp == 99);
    CHECK(lz4.body(Op::kWrite, 42, 99) == Bytes(a.begin() + cql::kHeaderSize, a.end()));
  }
  SUBCASE("v5 and snappy are refused by name") {
    CHECK_THROWS_WITH_AS(RequestBuilder(5, cql::Compression::kNone, kSelectId, kInsertId, 1),
                         "cqlbench speaks protocol v3 and v4 (got v5)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(RequestBuilder(4, cql::Compression::kSnappy, kSelectId, kInsertId, 1),
                         "cqlbench compresses with lz4 only", std::invalid_argument);
  }
}

TEST_CASE("setup frames") {
  SUBCASE("STARTUP names lz4 only when asked") {
    Bytes f = startup_frame(4, cql::Compression::kLz4);
    cql::Reader r(BytesView(f).subspan(cql::kHeaderSize));
    auto m = cql::StartupMsg::decode(r);
    CHECK(m.options == cql::StringMap{{"COMPRESSION", "lz4"}, {"CQL_VERSION", "3.0.0"}});
    Bytes g = startup_frame(4, cql::Compression::kNone);
    cql::Reader r2(BytesView(g).subspan(cql::kHeaderSize));
    CHECK(cql::StartupMsg::decode(r2).options == cql::StringMap{{"CQL_VERSION", "3.0.0"}});
  }
  SUBCASE("compress_frame keeps the header's stream and opcode and sets the flag") {
    Bytes f = prepare_frame(4, 7, Schema{}.select());
    Bytes c = compress_frame(f, cql::Compression::kLz4);
    cql::Header h = cql::decode_header(BytesView(c.data(), cql::kHeaderSize));
    CHECK(h.stream == 7);
    CHECK(h.opcode == cql::Opcode::kPrepare);
    CHECK(h.flags == cql::flag::kCompression);
    Bytes body =
        cql::decompress_body(cql::Compression::kLz4, BytesView(c).subspan(cql::kHeaderSize));
    cql::Reader r(body);
    CHECK(cql::PrepareMsg::decode(r, 4).query == "SELECT v FROM zdmbench.kv WHERE k = ?");
    CHECK(compress_frame(f, cql::Compression::kNone) == f);
  }
}
