// What the request and response harnesses share: the frame header of the input picks the
// protocol version, flags and opcode; a compressed body is inflated as the proxy would; each
// message decoded is encoded, decoded and encoded again, and both encodings must agree.
#pragma once

#include <optional>

#include "common/cql/compression.h"
#include "common/cql/messages.h"
#include "common/cql/version.h"
#include "tests/fuzz/fuzz_util.h"

namespace zdm::fuzz {

/// The protocol versions zdm speaks: 3, 4, 5, DSE_V1, DSE_V2.
inline uint8_t pick_version(uint8_t raw) {
  static constexpr uint8_t kVersions[] = {3, 4, 5, cql::kDseV1, cql::kDseV2};
  for (uint8_t v : kVersions)
    if (v == raw) return v;
  return kVersions[raw % 5];
}

/// A frame as the input spells it: the header (version mapped onto one zdm speaks), and the
/// rest of the input as the body, inflated when the compression flag says so (v3/v4 only;
/// LZ4 first, then Snappy). std::nullopt when the input is too short or does not inflate.
struct Input {
  cql::Header header;
  cql::Bytes body;
};

inline std::optional<Input> read_input(const uint8_t* data, std::size_t size) {
  if (size < cql::kHeaderSize) return std::nullopt;
  Input in;
  in.header = cql::decode_header(bytes_of(data, cql::kHeaderSize), UINT32_MAX);
  in.header.version = pick_version(in.header.version);
  const cql::BytesView body = bytes_of(data + cql::kHeaderSize, size - cql::kHeaderSize);
  if ((in.header.flags & cql::flag::kCompression) &&
      cql::uses_body_compression_flag(in.header.version)) {
    for (auto c : {cql::Compression::kLz4, cql::Compression::kSnappy}) {
      try {
        in.body = cql::decompress_body(c, body);
        return in;
      } catch (const cql::ProtocolError&) {
      }
    }
    return std::nullopt;
  }
  in.body.assign(body.begin(), body.end());
  return in;
}

template <class Msg>
cql::Bytes encode_one(const Msg& m, uint8_t version) {
  cql::Bytes out;
  cql::Writer w(out);
  if constexpr (requires { m.encode(w, version); }) {
    m.encode(w, version);
  } else {
    m.encode(w);
  }
  return out;
}

template <class Msg>
Msg decode_one(cql::Reader& r, uint8_t version) {
  if constexpr (requires { Msg::decode(r, version); }) {
    return Msg::decode(r, version);
  } else {
    return Msg::decode(r);
  }
}

/// Decodes a `Msg` from `r` (ProtocolError propagates), then checks the round trip:
/// encode(decode(encode(m))) == encode(m), and the second decode consumes every byte.
template <class Msg>
Msg decode_and_round_trip(cql::Reader& r, uint8_t version) {
  Msg m = decode_one<Msg>(r, version);
  const cql::Bytes first = encode_one(m, version);
  cql::Reader again(first);
  Msg m2 = decode_one<Msg>(again, version);
  FUZZ_CHECK(again.remaining() == 0);
  FUZZ_CHECK(encode_one(m2, version) == first);
  return m;
}

}  // namespace zdm::fuzz
