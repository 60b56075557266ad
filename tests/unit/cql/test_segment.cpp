#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "common/cql/segment.h"
#include "tests/unit/cql/cql_test_util.h"

using namespace zdm::cql;
using zdm::cql::test::bytes;
using zdm::cql::test::text;
using zdm::cql::test::operator+;

// Reference bytes in this file come from the DataStax python-driver 3.25 (Debian's
// python3-cassandra), run with /usr/bin/python3:
//   from cassandra.segment import SegmentCodec, compute_crc24, compute_crc32, CRC32_INITIAL
//   from cassandra.connection import lz4_compress, lz4_decompress
//   plain = SegmentCodec(); lz4 = SegmentCodec(lz4_compress, lz4_decompress)
//   buf = io.BytesIO(); plain.encode(buf, frame); buf.getvalue()
// (python3-lz4 4.0.2 on liblz4 1.9.4, the library we link, so LZ4 output is byte-identical).

namespace {

// OPTIONS, v5, stream 1: the envelope carried by the small golden segments (v5 §2.4).
const Bytes kOptions = bytes({
    0x05,                   // version 5, request
    0x00,                   // flags
    0x00, 0x01,             // stream 1
    0x05,                   // opcode OPTIONS
    0x00, 0x00, 0x00, 0x00  // body length 0
});

// QUERY "SELECT * FROM ks.t WHERE k='aaa…a'" (40 a's) at ONE, v5, stream 2: 88 bytes that LZ4
// compresses to 55.
const std::string kQueryText = "SELECT * FROM ks.t WHERE k='" + std::string(40, 'a') + "'";
const Bytes kQuery = bytes({0x05, 0x00, 0x00, 0x02,     // v5 request, flags 0, stream 2
                            0x07,                       // opcode QUERY
                            0x00, 0x00, 0x00, 0x4f,     // body length 79
                            0x00, 0x00, 0x00, 0x45}) +  // [long string] length 69
                     text(kQueryText) +                 // query
                     bytes({0x00, 0x01,                 // consistency ONE
                            0x00, 0x00, 0x00, 0x00});   // flags [int] 0

// kOptions in an uncompressed self-contained segment (v5 §2.1).
const Bytes kOptionsSegment = bytes({
                                  0x09, 0x00, 0x02,  // LE 0x020009: length 9 | self-contained
                                  0xa4, 0xc8, 0xc1,  // CRC24 0xc1c8a4 of those 3 bytes
                              }) +
                              kOptions +                        // payload
                              bytes({0xb5, 0x55, 0x74, 0x86});  // CRC32 0x867455b5, LE

// kOptions in an LZ4 segment: 9 bytes do not shrink, so they are stored as is (v5 §2.2).
const Bytes kOptionsLz4Segment = bytes({
                                     0x09, 0x00, 0x00, 0x00, 0x04,  // LE 0x0400000009: length
                                                                    // 9, uncompressed length
                                                                    // 0 (stored), bit 34 set
                                     0xc2, 0xb8, 0x95,              // CRC24 0x95b8c2
                                 }) +
                                 kOptions +                        // payload, not compressed
                                 bytes({0xb5, 0x55, 0x74, 0x86});  // CRC32 0x867455b5

// The LZ4 block of kQuery's 88 bytes, after its first 42 literals (the tail shared by the two
// compressed goldens below).
const Bytes kQueryLz4Tail = bytes({0x01, 0x00,  // match offset 1
                                   0x14,        // extra match length: 4 + 15 + 20 = 39 a's
                                   0x70,        // last token: 7 literals
                                   0x27,        //   "'"
                                   0x00, 0x01,  //   consistency ONE
                                   0x00, 0x00, 0x00, 0x00});  // flags [int] 0

// kQuery in an LZ4-compressed self-contained segment.
const Bytes kQueryLz4Segment =
    bytes({
        0x37, 0x00, 0xb0, 0x00, 0x04,  // LE 0x0400b00037: compressed length 55,
                                       // uncompressed length 88 (0x58 << 17), self-contained
        0xbe, 0xb8, 0x98,              // CRC24 0x98b8be
        0xff, 0x1b,                    // LZ4 token: 15 + 27 = 42 literals, then a match
    }) +
    Bytes(kQuery.begin(), kQuery.begin() + 42) +      // literals: header, length, "SELECT…k='a"
    kQueryLz4Tail + bytes({0xab, 0x3f, 0xf0, 0x54});  // CRC32 of the 55 compressed bytes

// kOptions and kQuery packed into one uncompressed self-contained segment (97 bytes).
const Bytes kTwoFramesSegment = bytes({
                                    0x61, 0x00, 0x02,  // length 97 | self-contained
                                    0x87, 0x0a, 0xcf,  // CRC24
                                }) +
                                kOptions + kQuery + bytes({0xed, 0x26, 0x83, 0x25});  // CRC32

// The same two envelopes in one LZ4 segment.
const Bytes kTwoFramesLz4Segment =
    bytes({
        0x40, 0x00, 0xc2, 0x00, 0x04,  // compressed 64, uncompressed 97, self-contained
        0xc1, 0xd6, 0xc8,              // CRC24
        0xff, 0x24,                    // 15 + 36 = 51 literals: OPTIONS + 42 bytes of QUERY
    }) +
    kOptions + Bytes(kQuery.begin(), kQuery.begin() + 42) + kQueryLz4Tail +
    bytes({0x71, 0xd0, 0x5a, 0xf8});  // CRC32

// A QUERY envelope with a 200000-byte body (byte i = i % 251): too big for one segment.
Bytes big_frame() {
  Bytes f = bytes({0x05, 0x00, 0x00, 0x03, 0x07, 0x00, 0x03, 0x0d, 0x40});  // body 200000
  f.reserve(9 + 200000);
  for (std::size_t i = 0; i < 200000; ++i) f.push_back(static_cast<std::byte>(i % 251));
  return f;
}

struct SegmentInfo {
  std::size_t length;        // payload bytes on the wire
  std::size_t uncompressed;  // LZ4 only; 0 = stored
  bool self_contained;
  Bytes header;  // header + CRC24 bytes
  Bytes crc32;   // trailer bytes
};

// Splits encoder output into segments, reading the fields by hand (not with SegmentDecoder).
std::vector<SegmentInfo> split(const Bytes& wire, bool lz4) {
  std::vector<SegmentInfo> out;
  const std::size_t hs = lz4 ? 8 : 6;
  std::size_t off = 0;
  while (off < wire.size()) {
    uint64_t h = 0;
    for (std::size_t i = hs - 3; i-- > 0;) h = (h << 8) | std::to_integer<uint64_t>(wire[off + i]);
    SegmentInfo s;
    s.length = h & 0x1ffff;
    s.uncompressed = lz4 ? (h >> 17) & 0x1ffff : 0;
    s.self_contained = (h >> (lz4 ? 34 : 17)) & 1;
    s.header.assign(wire.begin() + off, wire.begin() + off + hs);
    auto t = wire.begin() + off + hs + s.length;
    s.crc32.assign(t, t + 4);
    out.push_back(s);
    off += hs + s.length + 4;
  }
  REQUIRE(off == wire.size());
  return out;
}

// A hand-made segment (header fields as given, CRCs computed) for malformed layouts that the
// encoder never produces.
Bytes make_segment(const Bytes& payload, bool self_contained) {
  uint64_t h = payload.size() | (uint64_t{self_contained} << 17);
  uint32_t c24 = segment_crc24(h, 3);
  uint32_t c32 = segment_crc32(payload);
  Bytes out;
  for (int i = 0; i < 3; ++i) out.push_back(static_cast<std::byte>(h >> (8 * i)));
  for (int i = 0; i < 3; ++i) out.push_back(static_cast<std::byte>(c24 >> (8 * i)));
  out.insert(out.end(), payload.begin(), payload.end());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(c32 >> (8 * i)));
  return out;
}

Bytes make_lz4_segment(const Bytes& payload, std::size_t uncompressed, bool self_contained) {
  uint64_t h = payload.size() | (uint64_t{uncompressed} << 17) | (uint64_t{self_contained} << 34);
  uint32_t c24 = segment_crc24(h, 5);
  uint32_t c32 = segment_crc32(payload);
  Bytes out;
  for (int i = 0; i < 5; ++i) out.push_back(static_cast<std::byte>(h >> (8 * i)));
  for (int i = 0; i < 3; ++i) out.push_back(static_cast<std::byte>(c24 >> (8 * i)));
  out.insert(out.end(), payload.begin(), payload.end());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(c32 >> (8 * i)));
  return out;
}

Bytes encode(std::vector<Bytes> frames, Compression c = Compression::kNone) {
  std::vector<BytesView> views(frames.begin(), frames.end());
  Bytes out;
  SegmentEncoder(c).encode(views, out);
  return out;
}

// Every envelope the decoder yields from `wire`, fed `step` bytes at a time; checks that
// nothing comes out before the bytes that complete it.
std::vector<Bytes> decode_all(const Bytes& wire, Compression c, std::size_t step = SIZE_MAX) {
  SegmentDecoder d(c);
  std::vector<Bytes> out;
  Header h;
  Bytes raw;
  for (std::size_t off = 0; off < wire.size(); off += step) {
    d.feed(BytesView(wire).subspan(off, std::min(step, wire.size() - off)));
    while (d.next_raw(h, raw)) out.push_back(raw);
  }
  CHECK(d.buffered() == 0);
  return out;
}

}  // namespace

TEST_CASE("segment CRCs") {
  SUBCASE("CRC24 of 3- and 5-byte headers matches the python-driver's compute_crc24") {
    struct Case {
      uint64_t header;
      int n;
      uint32_t crc;
    };
    const Case cases[] = {
        {0x000000, 3, 0x7de777},     {0x000009, 3, 0x7819b9},     {0x020009, 3, 0xc1c8a4},
        {0x01ffff, 3, 0xfe9138},     {0x03ffff, 3, 0x474025},     {0x0000000000, 5, 0xaaac0a},
        {0x0400000009, 5, 0x95b8c2}, {0x04009c001d, 5, 0xbc30f5}, {0x02000a, 3, 0x79688c},
    };
    for (const auto& c : cases) {
      CAPTURE(c.header);
      CHECK(segment_crc24(c.header, c.n) == c.crc);
    }
  }
  SUBCASE("CRC32 starts from the bytes FA 2D 55 CA (python-driver CRC32_INITIAL)") {
    CHECK(segment_crc32({}) == 0x44777ed3);
    CHECK(segment_crc32(text("123456789")) == 0xe2a261a7);
    CHECK(segment_crc32(kOptions) == 0x867455b5);
    // The same as a plain CRC-32 over the four initial bytes followed by the payload.
    CHECK(segment_crc32(bytes({0x05, 0x00, 0x00, 0x02, 0x05, 0x00, 0x00, 0x00, 0x00})) ==
          0x00e0271b);
  }
}

TEST_CASE("uncompressed segments") {
  SUBCASE("golden self-contained segment: encode") {
    CHECK(encode({kOptions}) == kOptionsSegment);
  }
  SUBCASE("golden self-contained segment: decode, fed one byte at a time") {
    SegmentDecoder d;
    Frame f;
    for (std::size_t i = 0; i < kOptionsSegment.size(); ++i) {
      CAPTURE(i);
      CHECK_FALSE(d.next(f));
      d.feed(BytesView(kOptionsSegment).subspan(i, 1));
    }
    REQUIRE(d.next(f));
    CHECK(f.header == decode_header(kOptions));
    CHECK(f.body.empty());
    CHECK_FALSE(d.next(f));
    CHECK(d.buffered() == 0);
  }
  SUBCASE("two envelopes share one self-contained segment") {
    CHECK(encode({kOptions, kQuery}) == kTwoFramesSegment);
    CHECK(decode_all(kTwoFramesSegment, Compression::kNone, 1) ==
          std::vector<Bytes>{kOptions, kQuery});
  }
  SUBCASE("segments back to back, fed in uneven pieces") {
    Bytes wire = kOptionsSegment + kTwoFramesSegment + kOptionsSegment;
    for (std::size_t step : {1, 5, 7, 64, 1000}) {
      CAPTURE(step);
      CHECK(decode_all(wire, Compression::kNone, step) ==
            std::vector<Bytes>{kOptions, kOptions, kQuery, kOptions});
    }
  }
  SUBCASE("an empty self-contained segment carries nothing") {
    CHECK(decode_all(make_segment({}, true), Compression::kNone).empty());
  }
}

TEST_CASE("LZ4 segments") {
  SUBCASE("a payload that does not shrink is stored with uncompressed length 0") {
    CHECK(encode({kOptions}, Compression::kLz4) == kOptionsLz4Segment);
    CHECK(decode_all(kOptionsLz4Segment, Compression::kLz4, 1) == std::vector<Bytes>{kOptions});
  }
  SUBCASE("golden compressed segment: encode, and decode one byte at a time") {
    CHECK(encode({kQuery}, Compression::kLz4) == kQueryLz4Segment);
    CHECK(decode_all(kQueryLz4Segment, Compression::kLz4, 1) == std::vector<Bytes>{kQuery});
  }
  SUBCASE("two envelopes compressed together") {
    CHECK(encode({kOptions, kQuery}, Compression::kLz4) == kTwoFramesLz4Segment);
    CHECK(decode_all(kTwoFramesLz4Segment, Compression::kLz4, 1) ==
          std::vector<Bytes>{kOptions, kQuery});
  }
  SUBCASE("the segment header is 8 bytes: an uncompressed decoder rejects it") {
    SegmentDecoder d;
    d.feed(kQueryLz4Segment);
    Frame f;
    CHECK_THROWS_AS(d.next(f), ProtocolError);
  }
  SUBCASE("a payload that is not the LZ4 block it claims, with a valid CRC32") {
    Bytes wire = make_lz4_segment(bytes({0xff, 0xff, 0xff}), 100, true);
    SegmentDecoder d(Compression::kLz4);
    d.feed(wire);
    Frame f;
    CHECK_THROWS_WITH_AS(d.next(f), "corrupt lz4 segment payload: malformed lz4 block",
                         ProtocolError);
  }
}

TEST_CASE("multi-segment envelopes") {
  const Bytes big = big_frame();
  SUBCASE("uncompressed: split at 131071 bytes into segments that are not self-contained") {
    Bytes wire = encode({big});
    auto segs = split(wire, false);
    REQUIRE(segs.size() == 2);
    // Headers and CRC32s as the python-driver's SegmentCodec.encode writes them.
    CHECK(segs[0].header == bytes({0xff, 0xff, 0x01,     // length 131071, not self-contained
                                   0x38, 0x91, 0xfe}));  // CRC24 0xfe9138
    CHECK(segs[0].crc32 == bytes({0x23, 0xca, 0x5a, 0x3d}));
    CHECK(segs[1].header == bytes({0x4a, 0x0d, 0x01,  // length 68938
                                   0xc0, 0xe0, 0xe2}));
    CHECK(segs[1].crc32 == bytes({0x38, 0x45, 0x42, 0xf8}));
    CHECK(wire.size() == 200029);
    CHECK(decode_all(wire, Compression::kNone) == std::vector<Bytes>{big});
  }
  SUBCASE("uncompressed, fed one byte at a time: the envelope comes out on the last byte") {
    Bytes wire = encode({big});
    SegmentDecoder d;
    Frame f;
    for (std::size_t i = 0; i + 1 < wire.size(); ++i) {
      d.feed(BytesView(wire).subspan(i, 1));
      if (d.next(f)) FAIL("envelope before its last byte, at " << i);
    }
    d.feed(BytesView(wire).last(1));
    REQUIRE(d.next(f));
    CHECK(f.header.length == 200000);
    CHECK(f.body == Bytes(big.begin() + 9, big.end()));
  }
  SUBCASE("LZ4: each chunk compressed on its own") {
    Bytes wire = encode({big}, Compression::kLz4);
    auto segs = split(wire, true);
    REQUIRE(segs.size() == 2);
    CHECK(segs[0].header == bytes({0x0f, 0x03, 0xfe, 0xff, 0x03,  // 783 of 131071, not s-c
                                   0x94, 0x62, 0x1a}));
    CHECK(segs[0].crc32 == bytes({0x99, 0xfb, 0x5d, 0xd3}));
    CHECK(segs[1].header == bytes({0x13, 0x02, 0x94, 0x1a, 0x02,  // 531 of 68938
                                   0x86, 0x20, 0x40}));
    CHECK(segs[1].crc32 == bytes({0x2a, 0xef, 0x44, 0x25}));
    CHECK(decode_all(wire, Compression::kLz4, 1) == std::vector<Bytes>{big});
  }
  SUBCASE("small envelopes around a large one keep their order") {
    Bytes wire = encode({kOptions, big, kQuery});
    auto segs = split(wire, false);
    REQUIRE(segs.size() == 4);
    CHECK(segs[0].self_contained);
    CHECK_FALSE(segs[1].self_contained);
    CHECK_FALSE(segs[2].self_contained);
    CHECK(segs[3].self_contained);
    CHECK(decode_all(wire, Compression::kNone, 4096) == std::vector<Bytes>{kOptions, big, kQuery});
  }
}

TEST_CASE("SegmentEncoder packing") {
  auto frame_of = [](std::size_t total) {
    Bytes f(total);
    Header h{5, false, 0, 1, Opcode::kQuery, static_cast<uint32_t>(total - kHeaderSize)};
    encode_header(h, f.data());
    return f;
  };
  SUBCASE("frames are packed while they fit in 131071 bytes") {
    Bytes a = frame_of(50000), b = frame_of(50000), c = frame_of(50000);
    auto segs = split(encode({a, b, c}), false);
    REQUIRE(segs.size() == 2);
    CHECK(segs[0].length == 100000);
    CHECK(segs[0].self_contained);
    CHECK(segs[1].length == 50000);
    CHECK(segs[1].self_contained);
  }
  SUBCASE("a frame of exactly 131071 bytes is one self-contained segment") {
    auto segs = split(encode({frame_of(kMaxSegmentPayload)}), false);
    REQUIRE(segs.size() == 1);
    CHECK(segs[0].length == kMaxSegmentPayload);
    CHECK(segs[0].self_contained);
  }
  SUBCASE("one byte more is two segments, 131071 + 1") {
    Bytes f = frame_of(kMaxSegmentPayload + 1);
    Bytes wire = encode({f});
    auto segs = split(wire, false);
    REQUIRE(segs.size() == 2);
    CHECK(segs[0].length == kMaxSegmentPayload);
    CHECK(segs[1].length == 1);
    CHECK_FALSE(segs[0].self_contained);
    CHECK_FALSE(segs[1].self_contained);
    CHECK(decode_all(wire, Compression::kNone) == std::vector<Bytes>{f});
  }
  SUBCASE("no frames, no bytes") {
    Bytes out;
    SegmentEncoder().encode(std::span<const BytesView>(), out);
    CHECK(out.empty());
  }
  SUBCASE("encode appends to what is already in `out`") {
    Bytes out = bytes({0xaa});
    SegmentEncoder().encode(BytesView(kOptions), out);
    CHECK(out == bytes({0xaa}) + kOptionsSegment);
  }
  SUBCASE("snappy is not a segment compression") {
    CHECK_THROWS_AS(SegmentEncoder(Compression::kSnappy), std::invalid_argument);
    CHECK_THROWS_AS(SegmentDecoder(Compression::kSnappy), std::invalid_argument);
  }
}

TEST_CASE("segment round trips") {
  // Envelopes of sizes around the segment boundary, in random groups, fed in random pieces.
  uint32_t x = 12345;
  auto rnd = [&](uint32_t n) {
    x = x * 1664525u + 1013904223u;
    return (x >> 8) % n;
  };
  const std::size_t sizes[] = {9,
                               10,
                               100,
                               65536,
                               kMaxSegmentPayload - 1,
                               kMaxSegmentPayload,
                               kMaxSegmentPayload + 1,
                               2 * kMaxSegmentPayload + 5,
                               300000};
  for (Compression c : {Compression::kNone, Compression::kLz4}) {
    for (int round = 0; round < 8; ++round) {
      CAPTURE(round);
      std::vector<Bytes> frames;
      for (uint32_t n = 1 + rnd(5); n > 0; --n) {
        std::size_t total = sizes[rnd(std::size(sizes))];
        Bytes f(total);
        for (auto& b : f) b = static_cast<std::byte>(rnd(4) ? 'a' : rnd(256));  // compressible
        encode_header(Header{5, true, 0, static_cast<int16_t>(frames.size()), Opcode::kResult,
                             static_cast<uint32_t>(total - kHeaderSize)},
                      f.data());
        frames.push_back(std::move(f));
      }
      Bytes wire = encode(frames, c);
      SegmentDecoder d(c);
      std::vector<Bytes> got;
      Header h;
      Bytes raw;
      for (std::size_t off = 0; off < wire.size();) {
        std::size_t step = std::min<std::size_t>(1 + rnd(70000), wire.size() - off);
        d.feed(BytesView(wire).subspan(off, step));
        off += step;
        while (d.next_raw(h, raw)) got.push_back(raw);
      }
      CHECK(got == frames);
      CHECK(d.buffered() == 0);
    }
  }
}

TEST_CASE("SegmentDecoder errors") {
  Frame f;
  SUBCASE("a corrupt header fails its CRC24 before its length is trusted") {
    Bytes wire = kOptionsSegment;
    wire[0] = std::byte{0x0a};  // length 10
    SegmentDecoder d;
    d.feed(BytesView(wire).first(6));  // the header alone is enough to reject it
    CHECK_THROWS_WITH_AS(d.next(f),
                         "segment header CRC mismatch (received 0xc1c8a4, computed 0x79688c)",
                         ProtocolError);
  }
  SUBCASE("a corrupt payload fails its CRC32") {
    Bytes wire = kOptionsSegment;
    wire[6 + 3] = std::byte{0x02};  // stream 2
    SegmentDecoder d;
    d.feed(wire);
    CHECK_THROWS_WITH_AS(d.next(f),
                         "segment payload CRC mismatch (received 0x867455b5, computed 0x00e0271b)",
                         ProtocolError);
  }
  SUBCASE("a corrupt CRC32 trailer") {
    Bytes wire = kOptionsSegment;
    wire.back() = std::byte{0x00};
    SegmentDecoder d;
    d.feed(wire);
    CHECK_THROWS_WITH_AS(d.next(f),
                         "segment payload CRC mismatch (received 0x007455b5, computed 0x867455b5)",
                         ProtocolError);
  }
  SUBCASE("an envelope over max_body is refused on its first segment") {
    Bytes wire = encode({big_frame()});
    SegmentDecoder d(Compression::kNone, 1000);
    d.feed(BytesView(wire).first(kSegmentHeaderSize + kMaxSegmentPayload + 4));
    CHECK_THROWS_WITH_AS(d.next(f), "frame body too large: 200000 bytes, limit 1000",
                         ProtocolError);
  }
  SUBCASE("an envelope over max_body inside a self-contained segment") {
    SegmentDecoder d(Compression::kNone, 78);
    d.feed(kTwoFramesSegment);
    CHECK_THROWS_WITH_AS(d.next(f), "frame body too large: 79 bytes, limit 78", ProtocolError);
  }
  SUBCASE("set_max_body raises the limit") {
    SegmentDecoder d(Compression::kNone, 78);
    d.set_max_body(79);
    d.feed(kTwoFramesSegment);
    CHECK(d.next(f));
    CHECK(d.next(f));
  }
  SUBCASE("a self-contained segment that ends inside an envelope") {
    SegmentDecoder d;
    d.feed(make_segment(kOptions + Bytes(kQuery.begin(), kQuery.end() - 1), true));
    CHECK_THROWS_WITH_AS(d.next(f), "self-contained segment ends inside an envelope body",
                         ProtocolError);
    SegmentDecoder d2;
    d2.feed(make_segment(Bytes(kOptions.begin(), kOptions.begin() + 5), true));
    CHECK_THROWS_WITH_AS(d2.next(f), "self-contained segment ends inside an envelope header",
                         ProtocolError);
  }
  SUBCASE("a segment that is not self-contained holding two envelopes") {
    SegmentDecoder d;
    d.feed(make_segment(kOptions + kOptions, false));
    CHECK_THROWS_WITH_AS(d.next(f),
                         "segment that is not self-contained holds more than one envelope",
                         ProtocolError);
  }
  SUBCASE("a multi-segment envelope that starts with less than its header") {
    SegmentDecoder d;
    d.feed(make_segment(bytes({0x05, 0x00}), false));
    CHECK_THROWS_WITH_AS(d.next(f),
                         "multi-segment envelope starts with a 2-byte segment, shorter than its "
                         "header",
                         ProtocolError);
  }
  SUBCASE("a self-contained segment in the middle of a multi-segment envelope") {
    SegmentDecoder d;
    d.feed(make_segment(Bytes(kQuery.begin(), kQuery.begin() + 50), false));
    d.feed(kOptionsSegment);
    CHECK_THROWS_WITH_AS(d.next(f),
                         "self-contained segment inside a multi-segment envelope (38 bytes of it "
                         "still due)",
                         ProtocolError);
  }
  SUBCASE("a continuation longer than the rest of its envelope") {
    SegmentDecoder d;
    d.feed(make_segment(Bytes(kQuery.begin(), kQuery.begin() + 50), false));
    d.feed(make_segment(Bytes(kQuery.begin() + 50, kQuery.end()) + kOptions, false));
    CHECK_THROWS_WITH_AS(d.next(f),
                         "segment continues a multi-segment envelope past its end (47 bytes, 38 "
                         "due)",
                         ProtocolError);
  }
  SUBCASE("a multi-segment envelope split by hand in three reassembles") {
    Bytes wire = make_segment(Bytes(kQuery.begin(), kQuery.begin() + 20), false) +
                 make_segment(Bytes(kQuery.begin() + 20, kQuery.begin() + 60), false) +
                 make_segment(Bytes(kQuery.begin() + 60, kQuery.end()), false) + kOptionsSegment;
    CHECK(decode_all(wire, Compression::kNone, 1) == std::vector<Bytes>{kQuery, kOptions});
  }
  SUBCASE("garbage is a ProtocolError or, rarely, a need for more bytes") {
    for (uint32_t seed = 1; seed <= 2000; ++seed) {
      CAPTURE(seed);
      Bytes junk(64);
      uint32_t x = seed;
      for (auto& b : junk) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::byte>(x >> 24);
      }
      for (Compression c : {Compression::kNone, Compression::kLz4}) {
        SegmentDecoder d(c);
        d.feed(junk);
        try {
          bool got = d.next(f);
          CHECK_FALSE(got);
        } catch (const ProtocolError&) {
        }
      }
    }
  }
}

TEST_CASE("FrameStream") {
  // READY, v5 response, stream 0: the last unframed envelope of the handshake (v5 §2.3.1).
  const Bytes ready = bytes({0x85, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00});
  Frame f;
  SUBCASE("plain frames until segments are enabled") {
    FrameStream s;
    s.feed(kOptions + kQuery);
    REQUIRE(s.next(f));
    CHECK(f.header.opcode == Opcode::kOptions);
    REQUIRE(s.next(f));
    CHECK(f.header.opcode == Opcode::kQuery);
    CHECK_FALSE(s.segmented());
  }
  SUBCASE("bytes buffered after READY are parsed as segments") {
    FrameStream s;
    s.feed(ready + kTwoFramesSegment);
    REQUIRE(s.next(f));
    CHECK(f.header.opcode == Opcode::kReady);
    s.enable_segments(Compression::kNone);
    CHECK(s.segmented());
    CHECK(s.buffered() == kTwoFramesSegment.size());
    Header h;
    Bytes raw;
    REQUIRE(s.next_raw(h, raw));
    CHECK(raw == kOptions);
    REQUIRE(s.next_raw(h, raw));
    CHECK(raw == kQuery);
    CHECK_FALSE(s.next(f));
  }
  SUBCASE("one byte at a time across the switch, with LZ4") {
    Bytes wire = ready + kQueryLz4Segment + kOptionsLz4Segment;
    FrameStream s;
    std::vector<Bytes> got;
    Header h;
    Bytes raw;
    for (std::size_t i = 0; i < wire.size(); ++i) {
      s.feed(BytesView(wire).subspan(i, 1));
      while (s.next_raw(h, raw)) {
        got.push_back(raw);
        if (h.opcode == Opcode::kReady) s.enable_segments(Compression::kLz4);
      }
    }
    CHECK(got == std::vector<Bytes>{ready, kQuery, kOptions});
  }
  SUBCASE("frames_taken counts whole frames: an incomplete one does not move it") {
    FrameStream s;
    CHECK(s.frames_taken() == 0);
    const Bytes wire = kOptions + kQuery;
    s.feed(BytesView(wire).first(kOptions.size() + 3));
    Header h;
    Bytes raw;
    REQUIRE(s.next_raw(h, raw));
    CHECK_FALSE(s.next_raw(h, raw));
    CHECK(s.frames_taken() == 1);
    CHECK(s.buffered() == 3);  // the query's first bytes: a frame started, not complete
    s.feed(BytesView(wire).subspan(kOptions.size() + 3));
    REQUIRE(s.next(f));
    CHECK(s.frames_taken() == 2);
    CHECK(s.buffered() == 0);
  }
  SUBCASE("enabling twice is a bug") {
    FrameStream s;
    s.enable_segments(Compression::kNone);
    CHECK_THROWS_AS(s.enable_segments(Compression::kNone), std::logic_error);
  }
  SUBCASE("max_body carries over to segments and can be raised later") {
    FrameStream s(78);
    s.enable_segments(Compression::kNone);
    s.feed(kTwoFramesSegment);
    CHECK_THROWS_AS(s.next(f), ProtocolError);
    FrameStream s2(78);
    s2.enable_segments(Compression::kNone);
    s2.set_max_body(kMaxBodyLength);
    s2.feed(kTwoFramesSegment);
    CHECK(s2.next(f));
  }
}
