// Byte helpers shared by the CQL codec tests: golden bytes as small integer lists, readable
// failure output for Bytes.
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>

#include "common/cql/frame.h"
#include "common/cql/notation.h"

namespace zdm::cql::test {

/// Bytes from a list of octets: bytes({0x04, 0x00}).
inline Bytes bytes(std::initializer_list<unsigned> octets) {
  Bytes out;
  out.reserve(octets.size());
  for (unsigned o : octets) out.push_back(static_cast<std::byte>(o));
  return out;
}

/// The UTF-8 bytes of `s`, for the text part of a [string] or [long string].
inline Bytes text(std::string_view s) {
  return to_bytes(s);
}

/// Concatenation, so golden frames read field by field.
inline Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline std::string hex(BytesView b) {
  std::string out;
  for (std::size_t i = 0; i < b.size(); ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, i ? " %02x" : "%02x", std::to_integer<unsigned>(b[i]));
    out += buf;
  }
  return out;
}

}  // namespace zdm::cql::test

namespace doctest {
template <>
struct StringMaker<zdm::cql::Bytes> {
  static String convert(const zdm::cql::Bytes& b) {
    return ("[" + zdm::cql::test::hex(b) + "]").c_str();
  }
};
}  // namespace doctest
