#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/cql/compression.h"
#include "tests/unit/cql/cql_test_util.h"

using namespace zdm::cql;
using zdm::cql::test::bytes;
using zdm::cql::test::text;
using zdm::cql::test::operator+;

namespace {

// A frame body that compresses: [int] 1 then "hello " five times and "hello" (39 bytes).
const Bytes kBody = bytes({0x00, 0x00, 0x00, 0x01}) + text("hello hello hello hello hello hello");

// kBody compressed as Cassandra's v3/v4 LZ4 body (native_protocol_v4.spec §5). Reference bytes
// from the python-driver: cassandra.connection.lz4_compress(body) (python3-lz4 4.0.2 on
// liblz4 1.9.4), which we must equal byte for byte.
const Bytes kLz4Body = bytes({
    0x00, 0x00, 0x00, 0x27,  // uncompressed length 39, big-endian (§5)
    0xaf,                    // LZ4 token: 10 literals, match length 15 + extra
    0x00, 0x00, 0x00, 0x01,  //   literals: [int] 1
    0x68, 0x65, 0x6c, 0x6c,  //   "hell"
    0x6f, 0x20,              //   "o "
    0x06, 0x00,              //   match offset 6 (little-endian)
    0x05,                    //   extra match length: 4 + 15 + 5 = 24 bytes
    0x50,                    // last token: 5 literals, no match
    0x68, 0x65, 0x6c, 0x6c,  //   "hell"
    0x6f,                    //   "o"
});

// kBody as raw snappy. Reference bytes: python3-snappy 0.5.3 snappy.compress(body).
const Bytes kSnappyBody = bytes({
    0x27,                    // varint uncompressed length 39
    0x24,                    // literal tag: (10 - 1) << 2
    0x00, 0x00, 0x00, 0x01,  //   [int] 1
    0x68, 0x65, 0x6c, 0x6c,  //   "hell"
    0x6f, 0x20,              //   "o "
    0x72, 0x06, 0x00,        // copy, 2-byte offset: length (0x72 >> 2) + 1 = 29, offset 6
});

// Deterministic filler: `n` bytes from a linear congruential generator, optionally skewed to a
// small alphabet so that it compresses.
Bytes pseudo_random(std::size_t n, uint32_t seed, bool compressible) {
  Bytes out(n);
  uint32_t x = seed;
  for (auto& b : out) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::byte>(compressible ? 'a' + (x >> 28) % 4 : x >> 24);
  }
  return out;
}

}  // namespace

TEST_CASE("compression names") {
  SUBCASE("STARTUP values parse in any case") {
    struct Case {
      const char* name;
      Compression c;
    };
    const Case cases[] = {{"lz4", Compression::kLz4},       {"LZ4", Compression::kLz4},
                          {"Lz4", Compression::kLz4},       {"snappy", Compression::kSnappy},
                          {"SNAPPY", Compression::kSnappy}, {"sNaPpY", Compression::kSnappy}};
    for (const auto& c : cases) {
      CAPTURE(c.name);
      REQUIRE(parse_compression(c.name).has_value());
      CHECK(*parse_compression(c.name) == c.c);
    }
  }
  SUBCASE("anything else is not a compression") {
    using namespace std::string_view_literals;
    for (std::string_view name :
         {""sv, "none"sv, "lz4 "sv, "lz"sv, "zstd"sv, "deflate"sv, "snappy\0x"sv}) {
      CAPTURE(std::string(name));
      CHECK_FALSE(parse_compression(name).has_value());
    }
  }
  SUBCASE("formatting gives the lowercase STARTUP value, empty for none") {
    CHECK(compression_name(Compression::kLz4) == "lz4");
    CHECK(compression_name(Compression::kSnappy) == "snappy");
    CHECK(compression_name(Compression::kNone) == "");
    for (Compression c : {Compression::kLz4, Compression::kSnappy})
      CHECK(parse_compression(compression_name(c)) == c);
  }
}

TEST_CASE("LZ4 frame bodies (v4)") {
  SUBCASE("golden body from the python-driver: decompress, and compress to the same bytes") {
    CHECK(decompress_body(Compression::kLz4, kLz4Body) == kBody);
    CHECK(compress_body(Compression::kLz4, kBody) == kLz4Body);
  }
  SUBCASE("round trips from 0 bytes to over 64 KiB") {
    for (std::size_t n : {0, 1, 9, 100, 4096, 70000, 300000}) {
      for (bool compressible : {true, false}) {
        CAPTURE(n);
        CAPTURE(compressible);
        Bytes body = pseudo_random(n, static_cast<uint32_t>(n), compressible);
        Bytes packed = compress_body(Compression::kLz4, body);
        if (compressible && n >= 4096) CHECK(packed.size() < n);
        CHECK(decompress_body(Compression::kLz4, packed) == body);
      }
    }
  }
  SUBCASE("an empty body compresses as the python-driver's lz4_compress(b'') does") {
    CHECK(compress_body(Compression::kLz4, {}) == bytes({0x00, 0x00, 0x00, 0x00,  // length 0
                                                         0x00}));  // token: no literals
  }
  SUBCASE("an empty body may be the bare length prefix") {
    CHECK(decompress_body(Compression::kLz4, bytes({0, 0, 0, 0})).empty());
    CHECK(decompress_body(Compression::kLz4, bytes({0, 0, 0, 0, 0x00})).empty());
  }
  SUBCASE("the declared size is checked against the limit before allocating") {
    const Bytes huge = bytes({0x11, 0xe1, 0xa3, 0x00,  // 300000000 bytes uncompressed
                              0x10, 0x61});            // a token and one literal
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kLz4, huge),
                         "compressed frame body declares 300000000 bytes uncompressed, limit "
                         "268435456",
                         ProtocolError);
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kLz4, kLz4Body, 38),
                         "compressed frame body declares 39 bytes uncompressed, limit 38",
                         ProtocolError);
    CHECK(decompress_body(Compression::kLz4, kLz4Body, 39) == kBody);
  }
  SUBCASE("a declared size its block cannot expand to is refused before allocating") {
    // Found by fuzz_compression
    // (tests/fuzz/corpus/compression/oom-ecde16399f7068187d647db08b27b5f9bbecbb8c): 7 bytes
    // declared 153 MB, allocated (and zeroed) before the block was read. An LZ4 byte expands to at
    // most 255.
    const Bytes body = bytes({0x09, 0x20, 0x00, 0x00,                 // 153092096 bytes
                              0x00, 0x05, 'P', 'L', 'A', 'I', 'N'});  // a 7-byte block
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kLz4, body),
                         "corrupt lz4 frame body: declares 153092096 bytes uncompressed, more "
                         "than 7 compressed bytes can hold",
                         ProtocolError);
    const Bytes zeros(4 << 20, std::byte{0});  // the best ratio LZ4 reaches: just under 255
    CHECK(decompress_body(Compression::kLz4, compress_body(Compression::kLz4, zeros)) == zeros);
  }
  SUBCASE("a body shorter than its length prefix") {
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kLz4, bytes({0x00, 0x00, 0x27})),
                         "lz4 frame body of 3 bytes has no 4-byte length prefix", ProtocolError);
  }
  SUBCASE("a block that expands to less than declared") {
    Bytes body = kLz4Body;
    body[3] = std::byte{0x28};  // declares 40
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kLz4, body),
                         "corrupt lz4 frame body: expanded to 39 of 40 declared bytes",
                         ProtocolError);
  }
  SUBCASE("a block that would expand past the declared size") {
    Bytes body = kLz4Body;
    body[3] = std::byte{0x26};  // declares 38
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kLz4, body),
                         "corrupt lz4 frame body: malformed lz4 block", ProtocolError);
  }
  SUBCASE("every truncation of the golden body is an error, not a crash") {
    for (std::size_t n = 0; n < kLz4Body.size(); ++n) {
      CAPTURE(n);
      CHECK_THROWS_AS(decompress_body(Compression::kLz4, BytesView(kLz4Body).first(n)),
                      ProtocolError);
    }
  }
  SUBCASE("garbage after a small length prefix is a ProtocolError or a body of that length") {
    for (uint32_t seed = 0; seed < 2000; ++seed) {
      CAPTURE(seed);
      Bytes body = bytes({0x00, 0x00, 0x01, 0x00}) + pseudo_random(seed % 64, seed, false);
      // Any other exception type escapes and fails the test.
      try {
        Bytes out = decompress_body(Compression::kLz4, body);
        CHECK(out.size() == 256);
      } catch (const ProtocolError&) {
      }
    }
  }
}

TEST_CASE("Snappy frame bodies (v4)") {
  SUBCASE("golden body from python-snappy: decompress, and compress to the same bytes") {
    CHECK(decompress_body(Compression::kSnappy, kSnappyBody) == kBody);
    CHECK(compress_body(Compression::kSnappy, kBody) == kSnappyBody);
  }
  SUBCASE("round trips") {
    for (std::size_t n : {0, 1, 9, 100, 70000, 300000}) {
      for (bool compressible : {true, false}) {
        CAPTURE(n);
        CAPTURE(compressible);
        Bytes body = pseudo_random(n, static_cast<uint32_t>(n) + 7, compressible);
        CHECK(decompress_body(Compression::kSnappy, compress_body(Compression::kSnappy, body)) ==
              body);
      }
    }
  }
  SUBCASE("the varint length is checked against the limit before allocating") {
    const Bytes huge = bytes({0x80, 0xc6, 0x86, 0x8f, 0x01,  // varint 300000000
                              0x00, 0x61});                  // a 1-byte literal "a"
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kSnappy, huge),
                         "compressed frame body declares 300000000 bytes uncompressed, limit "
                         "268435456",
                         ProtocolError);
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kSnappy, kSnappyBody, 10),
                         "compressed frame body declares 39 bytes uncompressed, limit 10",
                         ProtocolError);
  }
  SUBCASE("a declared size its body cannot expand to is refused before allocating") {
    // As for LZ4 (fuzz_request, fuzz_response): a Snappy byte expands to at most 22 (a
    // 3-byte copy writes 64).
    const Bytes body = bytes({0x80, 0xc2, 0xd7, 0x2f,  // varint 100000000
                              0x00, 0x61});            // a 1-byte literal "a"
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kSnappy, body),
                         "corrupt snappy frame body: declares 100000000 bytes uncompressed, more "
                         "than 6 compressed bytes can hold",
                         ProtocolError);
    const Bytes zeros(4 << 20, std::byte{0});  // the best ratio Snappy reaches: 21.3
    CHECK(decompress_body(Compression::kSnappy, compress_body(Compression::kSnappy, zeros)) ==
          zeros);
  }
  SUBCASE("corrupt input") {
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kSnappy, {}),
                         "corrupt snappy frame body: bad length preamble", ProtocolError);
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kSnappy, bytes({0xff, 0xff, 0xff})),
                         "corrupt snappy frame body: bad length preamble", ProtocolError);
    Bytes longer = kSnappyBody;
    longer[0] = std::byte{0x28};  // declares 40, holds 39
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kSnappy, longer), "corrupt snappy frame body",
                         ProtocolError);
    for (std::size_t n = 1; n < kSnappyBody.size(); ++n) {
      CAPTURE(n);
      CHECK_THROWS_AS(decompress_body(Compression::kSnappy, BytesView(kSnappyBody).first(n)),
                      ProtocolError);
    }
  }
  SUBCASE("garbage is a ProtocolError or a body of its declared length") {
    for (uint32_t seed = 0; seed < 2000; ++seed) {
      CAPTURE(seed);
      Bytes body = bytes({0x80, 0x02}) + pseudo_random(seed % 64, seed, false);  // 256 bytes
      // Any other exception type escapes and fails the test.
      try {
        Bytes out = decompress_body(Compression::kSnappy, body);
        CHECK(out.size() == 256);
      } catch (const ProtocolError&) {
      }
    }
  }
}

TEST_CASE("no compression") {
  SUBCASE("compress_body copies") {
    CHECK(compress_body(Compression::kNone, kBody) == kBody);
  }
  SUBCASE("a compressed body on a connection without compression is an error") {
    CHECK_THROWS_WITH_AS(decompress_body(Compression::kNone, kBody),
                         "compressed frame body on a connection without compression",
                         ProtocolError);
  }
}

TEST_CASE("uncompressed_length: what a body declares, read without inflating it") {
  const Bytes plain = pseudo_random(100000, 7, true);
  CHECK(uncompressed_length(Compression::kLz4, compress_body(Compression::kLz4, plain)) ==
        plain.size());
  CHECK(uncompressed_length(Compression::kSnappy, compress_body(Compression::kSnappy, plain)) ==
        plain.size());
  // LZ4: the 4-byte big-endian prefix, whatever follows (it is not inflated here).
  CHECK(uncompressed_length(Compression::kLz4, bytes({0x0f, 0xff, 0xff, 0xff, 0x00})) ==
        0x0fffffffu);
  CHECK(!uncompressed_length(Compression::kLz4, bytes({0x00, 0x01})));
  // Snappy: the varint preamble (0x80 0x80 0x80 0x08 = 1 << 24).
  CHECK(uncompressed_length(Compression::kSnappy, bytes({0x80, 0x80, 0x80, 0x08})) == 1u << 24);
  CHECK(!uncompressed_length(Compression::kSnappy, bytes({0x80, 0x80})));
  CHECK(!uncompressed_length(Compression::kNone, plain));
}

TEST_CASE("lz4_body_prefix: the first bytes of a body, the rest not inflated") {
  const Bytes plain = pseudo_random(300000, 11, true);
  const Bytes packed = compress_body(Compression::kLz4, plain);
  Bytes out;
  BytesView p = lz4_body_prefix(packed, 1000, out);
  CHECK(Bytes(p.begin(), p.end()) == Bytes(plain.begin(), plain.begin() + 1000));
  CHECK(out.size() == 1000);  // nothing beyond the prefix was inflated
  // Asking for more than the body declares gives the whole body.
  p = lz4_body_prefix(packed, 1 << 20, out);
  CHECK(Bytes(p.begin(), p.end()) == plain);
  // A block shorter than it declares: what is there.
  Bytes short_decl = compress_body(Compression::kLz4, Bytes(plain.begin(), plain.begin() + 500));
  short_decl[1] = std::byte{0x10};  // declares far more than the block holds
  CHECK(lz4_body_prefix(short_decl, 2000, out).size() == 500);
  CHECK_THROWS_AS(lz4_body_prefix(bytes({0x00, 0x01}), 10, out), ProtocolError);
  CHECK_THROWS_AS(lz4_body_prefix(bytes({0x00, 0x00, 0x10, 0x00, 0xff, 0xff, 0xff}), 10, out),
                  ProtocolError);
}
