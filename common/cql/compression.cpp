#include "common/cql/compression.h"

#include <lz4.h>
#include <snappy-c.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <string>

namespace zdm::cql {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != static_cast<unsigned char>(b[i]))
      return false;
  }
  return true;
}

const char* as_chars(BytesView b) {
  return reinterpret_cast<const char*>(b.data());
}

// The most a compressed byte can expand to: an LZ4 match grows by 255 bytes per length byte
// (ratio just under 255); a Snappy copy writes at most 64 bytes for 3 (just under 22).
constexpr uint64_t kLz4MaxRatio = 255;
constexpr uint64_t kSnappyMaxRatio = 22;

// Checks a declared uncompressed size before it is allocated: against the limit, and against
// what `compressed` bytes can expand to (a few bytes must not reserve 256 MB).
void check_declared(uint64_t declared, uint32_t max_uncompressed, std::size_t compressed,
                    uint64_t max_ratio, const char* what) {
  if (declared > max_uncompressed) {
    throw ProtocolError("compressed frame body declares " + std::to_string(declared) +
                        " bytes uncompressed, limit " + std::to_string(max_uncompressed));
  }
  if (declared > compressed * max_ratio) {
    throw ProtocolError(std::string("corrupt ") + what + ": declares " + std::to_string(declared) +
                        " bytes uncompressed, more than " + std::to_string(compressed) +
                        " compressed bytes can hold");
  }
}

/// An LZ4 frame body's 4-byte big-endian uncompressed length (its block follows). Throws
/// ProtocolError when the body is shorter than that.
uint32_t lz4_declared_length(BytesView body) {
  if (body.size() < 4) {
    throw ProtocolError("lz4 frame body of " + std::to_string(body.size()) +
                        " bytes has no 4-byte length prefix");
  }
  uint32_t declared = 0;
  for (int i = 0; i < 4; ++i) declared = (declared << 8) | std::to_integer<uint32_t>(body[i]);
  return declared;
}

Bytes lz4_decompress_body(BytesView body, uint32_t max_uncompressed) {
  const uint32_t declared = lz4_declared_length(body);
  BytesView block = body.subspan(4);
  check_declared(declared, max_uncompressed, block.size(), kLz4MaxRatio, "lz4 frame body");
  Bytes out(declared);
  // An empty body may be sent as its prefix alone; any block must expand to `declared` bytes.
  if (declared == 0 && block.empty()) return out;
  lz4_decompress_block(block, out, "lz4 frame body");
  return out;
}

Bytes snappy_decompress_body(BytesView body, uint32_t max_uncompressed) {
  std::size_t declared = 0;
  if (snappy_uncompressed_length(as_chars(body), body.size(), &declared) != SNAPPY_OK) {
    throw ProtocolError("corrupt snappy frame body: bad length preamble");
  }
  check_declared(declared, max_uncompressed, body.size(), kSnappyMaxRatio, "snappy frame body");
  Bytes out(declared);
  std::size_t got = declared;
  if (snappy_uncompress(as_chars(body), body.size(), reinterpret_cast<char*>(out.data()), &got) !=
          SNAPPY_OK ||
      got != declared) {
    throw ProtocolError("corrupt snappy frame body");
  }
  return out;
}

}  // namespace

std::optional<std::size_t> uncompressed_length(Compression c, BytesView body) {
  switch (c) {
    case Compression::kLz4: {
      if (body.size() < 4) return std::nullopt;
      uint32_t declared = 0;
      for (int i = 0; i < 4; ++i) declared = (declared << 8) | std::to_integer<uint32_t>(body[i]);
      return declared;
    }
    case Compression::kSnappy: {
      std::size_t declared = 0;
      if (snappy_uncompressed_length(as_chars(body), body.size(), &declared) != SNAPPY_OK)
        return std::nullopt;
      return declared;
    }
    case Compression::kNone:
      break;
  }
  return std::nullopt;
}

std::optional<Compression> parse_compression(std::string_view name) {
  if (iequals(name, "lz4")) return Compression::kLz4;
  if (iequals(name, "snappy")) return Compression::kSnappy;
  return std::nullopt;
}

std::string_view compression_name(Compression c) {
  switch (c) {
    case Compression::kLz4:
      return "lz4";
    case Compression::kSnappy:
      return "snappy";
    case Compression::kNone:
      break;
  }
  return "";
}

std::size_t lz4_compress_block(BytesView in, Bytes& out) {
  if (in.size() > kMaxBodyLength) {
    throw ProtocolError("cannot compress " + std::to_string(in.size()) + " bytes: over the " +
                        std::to_string(kMaxBodyLength) + "-byte body limit");
  }
  const int n = static_cast<int>(in.size());
  const int bound = LZ4_compressBound(n);
  const std::size_t at = out.size();
  out.resize(at + static_cast<std::size_t>(bound));
  const int written =
      LZ4_compress_default(as_chars(in), reinterpret_cast<char*>(out.data() + at), n, bound);
  // Cannot fail: the destination holds LZ4_compressBound bytes (lz4.h).
  out.resize(at + static_cast<std::size_t>(written > 0 ? written : 0));
  return out.size() - at;
}

void lz4_decompress_block(BytesView in, std::span<std::byte> out, const char* what) {
  if (in.size() > INT_MAX || out.size() > INT_MAX) {
    throw ProtocolError(std::string(what) + ": block too large");
  }
  // LZ4_decompress_safe never reads past `in` nor writes past `out` (lz4.h), whatever the input.
  const int got = LZ4_decompress_safe(as_chars(in), reinterpret_cast<char*>(out.data()),
                                      static_cast<int>(in.size()), static_cast<int>(out.size()));
  if (got < 0 || static_cast<std::size_t>(got) != out.size()) {
    throw ProtocolError(std::string("corrupt ") + what + ": " +
                        (got < 0 ? std::string("malformed lz4 block")
                                 : "expanded to " + std::to_string(got) + " of " +
                                       std::to_string(out.size()) + " declared bytes"));
  }
}

BytesView lz4_body_prefix(BytesView body, std::size_t n, Bytes& out) {
  const uint32_t declared = lz4_declared_length(body);
  BytesView block = body.subspan(4);
  const std::size_t want = std::min<std::size_t>({n, declared, INT_MAX});
  if (block.size() > INT_MAX) throw ProtocolError("lz4 frame body: block too large");
  out.resize(want);
  if (want == 0) return BytesView(out.data(), 0);
  // Stops once `want` bytes are out (lz4.h: LZ4_decompress_safe_partial), within `block`.
  const int got = LZ4_decompress_safe_partial(as_chars(block), reinterpret_cast<char*>(out.data()),
                                              static_cast<int>(block.size()),
                                              static_cast<int>(want), static_cast<int>(want));
  if (got < 0) throw ProtocolError("corrupt lz4 frame body: malformed lz4 block");
  return BytesView(out.data(), static_cast<std::size_t>(got));
}

Bytes compress_body(Compression c, BytesView body) {
  if (body.size() > kMaxBodyLength) {
    throw ProtocolError("cannot compress " + std::to_string(body.size()) + " bytes: over the " +
                        std::to_string(kMaxBodyLength) + "-byte body limit");
  }
  switch (c) {
    case Compression::kLz4: {
      const auto n = static_cast<uint32_t>(body.size());
      Bytes out{std::byte((n >> 24) & 0xff), std::byte((n >> 16) & 0xff),
                std::byte((n >> 8) & 0xff), std::byte(n & 0xff)};
      out.reserve(4 + static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(n))));
      lz4_compress_block(body, out);
      return out;
    }
    case Compression::kSnappy: {
      std::size_t len = snappy_max_compressed_length(body.size());
      Bytes out(len);
      snappy_compress(as_chars(body), body.size(), reinterpret_cast<char*>(out.data()), &len);
      out.resize(len);
      return out;
    }
    case Compression::kNone:
      break;
  }
  return Bytes(body.begin(), body.end());
}

Bytes decompress_body(Compression c, BytesView body, uint32_t max_uncompressed) {
  switch (c) {
    case Compression::kLz4:
      return lz4_decompress_body(body, max_uncompressed);
    case Compression::kSnappy:
      return snappy_decompress_body(body, max_uncompressed);
    case Compression::kNone:
      break;
  }
  throw ProtocolError("compressed frame body on a connection without compression");
}

}  // namespace zdm::cql
