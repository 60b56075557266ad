#include <doctest/doctest.h>

#include "common/cql/frame.h"
#include "tests/unit/cql/cql_test_util.h"

using namespace zdm::cql;
using zdm::cql::test::bytes;
using zdm::cql::test::operator+;

namespace {

// An OPTIONS request, v4, stream 1, empty body (native_protocol_v4.spec §2, §4.1.3).
const Bytes kOptions = bytes({
    0x04,                   // version 4, request (direction bit clear)
    0x00,                   // flags
    0x00, 0x01,             // stream 1
    0x05,                   // opcode OPTIONS
    0x00, 0x00, 0x00, 0x00  // body length 0
});

// A READY response, v4, stream 1 (§4.2.2).
const Bytes kReady = bytes({
    0x84,                   // version 4 | 0x80 response
    0x00,                   // flags
    0x00, 0x01,             // stream 1
    0x02,                   // opcode READY
    0x00, 0x00, 0x00, 0x00  // body length 0
});

// A RESULT Void response, v4, stream 0x0102, tracing flag set (body is not parsed here).
const Bytes kVoidResult = bytes({
    0x84,                    // version 4 | 0x80 response
    0x02,                    // flags: tracing
    0x01, 0x02,              // stream 0x0102
    0x08,                    // opcode RESULT
    0x00, 0x00, 0x00, 0x04,  // body length 4
    0x00, 0x00, 0x00, 0x01   // body: [int] kind Void
});

Frame take(FrameDecoder& d) {
  Frame f;
  REQUIRE(d.next(f));
  return f;
}

}  // namespace

TEST_CASE("frame header") {
  SUBCASE("decodes each field of a request header") {
    Header h = decode_header(kOptions);
    CHECK(h.version == 4);
    CHECK_FALSE(h.response);
    CHECK(h.flags == 0);
    CHECK(h.stream == 1);
    CHECK(h.opcode == Opcode::kOptions);
    CHECK(h.length == 0);
  }
  SUBCASE("the direction bit is split from the version") {
    Header h = decode_header(kReady);
    CHECK(h.version == 4);
    CHECK(h.response);
    CHECK(h.opcode == Opcode::kReady);
  }
  SUBCASE("a negative stream id (events use -1) is kept signed") {
    Bytes event = bytes({0x85, 0x00, 0xff, 0xff, 0x0c, 0x00, 0x00, 0x00, 0x00});
    Header h = decode_header(event);
    CHECK(h.version == 5);
    CHECK(h.stream == -1);
    CHECK(h.opcode == Opcode::kEvent);
  }
  SUBCASE("big-endian body length and flags") {
    Header h = decode_header(kVoidResult);
    CHECK(h.flags == flag::kTracing);
    CHECK(h.stream == 0x0102);
    CHECK(h.length == 4);
  }
  SUBCASE("round trip: encode(decode(bytes)) == bytes and decode(encode(h)) == h") {
    for (const Bytes* golden : {&kOptions, &kReady, &kVoidResult}) {
      Header h = decode_header(*golden);
      Bytes out(kHeaderSize);
      encode_header(h, out.data());
      CHECK(out == Bytes(golden->begin(), golden->begin() + kHeaderSize));
      CHECK(decode_header(out) == h);
    }
  }
  SUBCASE("a header shorter than 9 bytes is an error") {
    CHECK_THROWS_WITH_AS(decode_header(BytesView(kOptions).first(5)),
                         "truncated frame header: expected 9 bytes, length is 5", ProtocolError);
  }
  SUBCASE("a body length over max_body is an error") {
    Bytes big = bytes({0x04, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x01, 0x00});  // 256 bytes
    CHECK(decode_header(big, 256).length == 256);
    CHECK_THROWS_WITH_AS(decode_header(big, 255), "frame body too large: 256 bytes, limit 255",
                         ProtocolError);
  }
  SUBCASE("the default limit is the spec's 256 MB") {
    Bytes at_limit = bytes({0x04, 0x00, 0x00, 0x00, 0x07, 0x10, 0x00, 0x00, 0x00});
    Bytes over = bytes({0x04, 0x00, 0x00, 0x00, 0x07, 0x10, 0x00, 0x00, 0x01});
    CHECK(decode_header(at_limit).length == kMaxBodyLength);
    CHECK_THROWS_WITH_AS(decode_header(over),
                         "frame body too large: 268435457 bytes, limit 268435456", ProtocolError);
  }
}

TEST_CASE("opcodes") {
  struct Case {
    uint8_t raw;
    const char* name;
  };
  const Case cases[] = {
      {0x00, "ERROR"},   {0x01, "STARTUP"},        {0x02, "READY"},         {0x03, "AUTHENTICATE"},
      {0x05, "OPTIONS"}, {0x06, "SUPPORTED"},      {0x07, "QUERY"},         {0x08, "RESULT"},
      {0x09, "PREPARE"}, {0x0A, "EXECUTE"},        {0x0B, "REGISTER"},      {0x0C, "EVENT"},
      {0x0D, "BATCH"},   {0x0E, "AUTH_CHALLENGE"}, {0x0F, "AUTH_RESPONSE"}, {0x10, "AUTH_SUCCESS"},
  };
  SUBCASE("every opcode of §2.4 has its spec name and is known") {
    for (const auto& c : cases) {
      CAPTURE(c.raw);
      CHECK(opcode_name(static_cast<Opcode>(c.raw)) == c.name);
      CHECK(is_known_opcode(c.raw));
    }
  }
  SUBCASE("0x04 (CREDENTIALS, v1 only) and values past 0x10 are unknown") {
    for (uint8_t raw : {0x04, 0x11, 0x1f, 0xff}) {
      CAPTURE(raw);
      CHECK_FALSE(is_known_opcode(raw));
    }
    CHECK(opcode_name(static_cast<Opcode>(0x1f)) == "UNKNOWN(0x1f)");
    CHECK(opcode_name(static_cast<Opcode>(0x04)) == "UNKNOWN(0x04)");
  }
}

TEST_CASE("stream ids") {
  SUBCASE("frame_stream reads bytes 2-3") {
    CHECK(frame_stream(kVoidResult.data()) == 0x0102);
  }
  SUBCASE("patch_stream rewrites only bytes 2-3 in place") {
    struct Case {
      int16_t stream;
      unsigned hi, lo;
    };
    const Case cases[] = {{0, 0x00, 0x00},  {1, 0x00, 0x01},      {0x7fff, 0x7f, 0xff},
                          {-1, 0xff, 0xff}, {-32768, 0x80, 0x00}, {0x1234, 0x12, 0x34}};
    for (const auto& c : cases) {
      CAPTURE(c.stream);
      Bytes frame = kVoidResult;
      patch_stream(frame.data(), c.stream);
      Bytes expected = kVoidResult;
      expected[2] = static_cast<std::byte>(c.hi);
      expected[3] = static_cast<std::byte>(c.lo);
      CHECK(frame == expected);
      CHECK(frame_stream(frame.data()) == c.stream);
      CHECK(decode_header(frame).stream == c.stream);
    }
  }
}

TEST_CASE("encode_frame") {
  SUBCASE("sets the length from the body and appends it after the header") {
    Header h{4, true, flag::kTracing, 0x0102, Opcode::kResult, 999};  // length is overwritten
    Bytes body = bytes({0x00, 0x00, 0x00, 0x01});
    CHECK(encode_frame(h, body) == kVoidResult);
  }
  SUBCASE("an empty body gives a bare header") {
    CHECK(encode_frame(Header{4, false, 0, 1, Opcode::kOptions, 0}, {}) == kOptions);
  }
}

TEST_CASE("FrameDecoder") {
  SUBCASE("needs a whole header before it reports anything") {
    FrameDecoder d;
    Frame f;
    CHECK_FALSE(d.next(f));
    d.feed(BytesView(kVoidResult).first(8));
    CHECK_FALSE(d.next(f));
    CHECK(d.buffered() == 8);
  }
  SUBCASE("fed one byte at a time, yields the frame only on its last byte") {
    FrameDecoder d;
    Frame f;
    for (std::size_t i = 0; i < kVoidResult.size(); ++i) {
      CAPTURE(i);
      CHECK_FALSE(d.next(f));
      d.feed(BytesView(kVoidResult).subspan(i, 1));
    }
    REQUIRE(d.next(f));
    CHECK(f.header == decode_header(kVoidResult));
    CHECK(f.body == bytes({0x00, 0x00, 0x00, 0x01}));
    CHECK(d.buffered() == 0);
    CHECK_FALSE(d.next(f));
  }
  SUBCASE("two frames in one feed come out in order") {
    FrameDecoder d;
    d.feed(kOptions + kVoidResult);
    Frame a = take(d);
    Frame b = take(d);
    CHECK(a.header.opcode == Opcode::kOptions);
    CHECK(a.body.empty());
    CHECK(b.header.opcode == Opcode::kResult);
    CHECK(b.body.size() == 4);
    Frame none;
    CHECK_FALSE(d.next(none));
  }
  SUBCASE("a frame split across feeds, followed by part of the next") {
    FrameDecoder d;
    Bytes stream = kVoidResult + kReady;
    d.feed(BytesView(stream).first(11));
    Frame f;
    CHECK_FALSE(d.next(f));
    d.feed(BytesView(stream).subspan(11, 5));  // rest of RESULT + 3 bytes of READY
    CHECK(take(d).header.opcode == Opcode::kResult);
    CHECK_FALSE(d.next(f));
    CHECK(d.buffered() == 3);
    d.feed(BytesView(stream).subspan(16));
    CHECK(take(d).header.opcode == Opcode::kReady);
  }
  SUBCASE("next_raw hands back header and body contiguous, ready to forward") {
    FrameDecoder d;
    d.feed(kReady + kVoidResult);
    Header h;
    Bytes raw;
    REQUIRE(d.next_raw(h, raw));
    CHECK(raw == kReady);
    CHECK(h.opcode == Opcode::kReady);
    REQUIRE(d.next_raw(h, raw));
    CHECK(raw == kVoidResult);
    CHECK(h.length == 4);
    CHECK_FALSE(d.next_raw(h, raw));
  }
  SUBCASE("a large frame that is all the buffer holds is handed over, not copied") {
    FrameDecoder d;
    const Bytes frame = encode_frame(Header{4, true, 0, 3, Opcode::kResult, 0},
                                     Bytes(FrameDecoder::kMoveFrameBytes, std::byte{0x5a}));
    d.feed(BytesView(frame).first(100));
    d.feed(BytesView(frame).subspan(100));
    Header h;
    Bytes raw;
    REQUIRE(d.next_raw(h, raw));
    CHECK(raw == frame);
    CHECK(d.buffered() == 0);
    CHECK_FALSE(d.next_raw(h, raw));
    // The decoder goes on with a fresh buffer; a large frame followed by more bytes is copied.
    d.feed(frame + kReady);
    REQUIRE(d.next_raw(h, raw));
    CHECK(raw == frame);
    CHECK(d.buffered() == kReady.size());
    REQUIRE(d.next_raw(h, raw));
    CHECK(raw == kReady);
    // A large frame, then a frame split across feeds: the bytes after the large one are kept.
    d.feed(frame + Bytes(kVoidResult.begin(), kVoidResult.begin() + 5));
    REQUIRE(d.next_raw(h, raw));
    CHECK(raw == frame);
    CHECK_FALSE(d.next_raw(h, raw));
    d.feed(BytesView(kVoidResult).subspan(5));
    REQUIRE(d.next_raw(h, raw));
    CHECK(raw == kVoidResult);
  }
  SUBCASE("a large frame's buffer, reserved whole once accepted, never grows") {
    const Bytes frame = encode_frame(Header{4, false, 0, 3, Opcode::kQuery, 0},
                                     Bytes(3 * FrameDecoder::kMoveFrameBytes + 7, std::byte{1}));
    for (bool reserve : {true, false}) {
      CAPTURE(reserve);
      FrameDecoder d;
      for (std::size_t at = 0; at < frame.size(); at += 64 * 1024) {
        d.feed(BytesView(frame).subspan(at, std::min<std::size_t>(64 * 1024, frame.size() - at)));
        if (at == 0 && reserve) d.reserve_pending();
      }
      Header h;
      Bytes raw;
      REQUIRE(d.next_raw(h, raw));
      CHECK(raw == frame);
      // Reserved: exactly the frame. Not reserved (a header alone reserves nothing): grown by
      // doubling from 64 KiB pieces, to 4 MiB.
      CHECK((raw.capacity() == frame.size()) == reserve);
    }
  }
  SUBCASE("many frames through one decoder (buffer compaction keeps frames whole)") {
    FrameDecoder d;
    Bytes body(1000, std::byte{0xab});
    Bytes frame = encode_frame(Header{4, false, 0, 7, Opcode::kQuery, 0}, body);
    int taken = 0;
    for (int i = 0; i < 200; ++i) {
      // Feed in uneven pieces so the read position is often mid-buffer.
      d.feed(BytesView(frame).first(500));
      d.feed(BytesView(frame).subspan(500));
      Frame f;
      while (d.next(f)) {
        CHECK(f.body == body);
        ++taken;
      }
    }
    CHECK(taken == 200);
    CHECK(d.buffered() == 0);
  }
  SUBCASE("a body length over max_body throws from next()") {
    FrameDecoder d(16);
    d.feed(bytes({0x04, 0x00, 0x00, 0x01, 0x07, 0x00, 0x00, 0x00, 0x11}));
    Frame f;
    CHECK_THROWS_WITH_AS(d.next(f), "frame body too large: 17 bytes, limit 16", ProtocolError);
    Header h;
    Bytes raw;
    CHECK_THROWS_WITH_AS(d.next_raw(h, raw), "frame body too large: 17 bytes, limit 16",
                         ProtocolError);
  }
  SUBCASE("set_max_body raises the limit (small before STARTUP, larger after)") {
    FrameDecoder d(16);
    d.feed(encode_frame(Header{4, false, 0, 1, Opcode::kQuery, 0}, Bytes(17)));
    Frame f;
    CHECK_THROWS_AS(d.next(f), ProtocolError);
    d.set_max_body(kMaxBodyLength);
    REQUIRE(d.next(f));
    CHECK(f.body.size() == 17);
  }
}
