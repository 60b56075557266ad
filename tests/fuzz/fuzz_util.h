// Helpers shared by the libFuzzer harnesses: byte views of the input, a check that aborts with
// a message (so libFuzzer records the input as a crash), and chunked feeding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

#include "common/cql/frame.h"

namespace zdm::fuzz {

inline cql::BytesView bytes_of(const uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

inline std::string_view text_of(const uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// A property of the code under test failed: print it and abort, which libFuzzer reports as a
/// crash and saves the input for.
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
  std::abort();
}

#define FUZZ_CHECK(cond) ((cond) ? (void)0 : ::zdm::fuzz::fail(#cond, __FILE__, __LINE__))

/// Calls `feed(chunk)` for consecutive chunks of `in` of `chunk` bytes (the last one shorter),
/// and `drain()` after each, as a socket reader would.
template <class Feed, class Drain>
void feed_in_chunks(cql::BytesView in, std::size_t chunk, Feed&& feed, Drain&& drain) {
  if (chunk == 0) chunk = 1;
  for (std::size_t off = 0; off < in.size(); off += chunk) {
    feed(in.subspan(off, std::min(chunk, in.size() - off)));
    drain();
  }
  if (in.empty()) drain();
}

}  // namespace zdm::fuzz
