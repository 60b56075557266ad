#include "testcluster/values.h"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

namespace zdm::testcluster {
namespace {

std::string kind_name(Term::Kind k) {
  switch (k) {
    case Term::Kind::kInteger:
      return "INTEGER";
    case Term::Kind::kFloat:
      return "FLOAT";
    case Term::Kind::kString:
      return "STRING";
    case Term::Kind::kBoolean:
      return "BOOLEAN";
    case Term::Kind::kUuid:
      return "UUID";
    case Term::Kind::kHex:
      return "HEX";
    default:
      return "VALUE";
  }
}

[[noreturn]] void bad_literal(const Term& t, const DataType& type, const std::string& column) {
  throw InvalidRequest("Invalid " + kind_name(t.kind) + " constant (" + t.text + ") for \"" +
                       column + "\" of type " + cql::cql_type_name(type));
}

int64_t parse_int(const Term& t, const DataType& type, const std::string& column, int64_t lo,
                  int64_t hi) {
  if (t.kind != Term::Kind::kInteger) bad_literal(t, type, column);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
  if (ec != std::errc() || p != t.text.data() + t.text.size() || v < lo || v > hi)
    throw InvalidRequest("Invalid INTEGER constant (" + t.text + ") for \"" + column +
                         "\" of type " + cql::cql_type_name(type) + ": out of range");
  return v;
}

// Two's complement big-endian minimal encoding of a decimal integer string.
Bytes varint_from_decimal(std::string_view digits) {
  bool neg = false;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    neg = digits[0] == '-';
    digits.remove_prefix(1);
  }
  std::vector<uint8_t> mag{0};  // big-endian magnitude
  for (char c : digits) {
    if (c < '0' || c > '9') throw InvalidRequest("invalid varint " + std::string(digits));
    unsigned carry = static_cast<unsigned>(c - '0');
    for (auto it = mag.rbegin(); it != mag.rend(); ++it) {
      unsigned v = *it * 10u + carry;
      *it = static_cast<uint8_t>(v & 0xff);
      carry = v >> 8;
    }
    while (carry) {
      mag.insert(mag.begin(), static_cast<uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  if (neg) {  // two's complement: invert and add one
    for (auto& b : mag) b = static_cast<uint8_t>(~b);
    for (auto it = mag.rbegin(); it != mag.rend(); ++it)
      if (++*it != 0) break;
    if (!(mag[0] & 0x80)) mag.insert(mag.begin(), 0xff);
    while (mag.size() > 1 && mag[0] == 0xff && (mag[1] & 0x80)) mag.erase(mag.begin());
  } else {
    if (mag[0] & 0x80) mag.insert(mag.begin(), 0x00);
    while (mag.size() > 1 && mag[0] == 0 && !(mag[1] & 0x80)) mag.erase(mag.begin());
  }
  Bytes out;
  for (auto b : mag) out.push_back(static_cast<std::byte>(b));
  return out;
}

Bytes decimal_from_text(const std::string& text) {
  std::string s = text;
  int exp = 0;
  if (auto e = s.find_first_of("eE"); e != std::string::npos) {
    exp = std::stoi(s.substr(e + 1));
    s = s.substr(0, e);
  }
  int scale = 0;
  if (auto dot = s.find('.'); dot != std::string::npos) {
    scale = static_cast<int>(s.size() - dot - 1);
    s.erase(dot, 1);
  }
  scale -= exp;
  Bytes out = be_int(scale, 4);
  Bytes unscaled = varint_from_decimal(s);
  out.insert(out.end(), unscaled.begin(), unscaled.end());
  return out;
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Parses "hh:mm[:ss[.fffffffff]]" into nanoseconds; false on error.
bool parse_time_of_day(std::string_view s, int64_t& nanos) {
  unsigned h = 0, m = 0, sec = 0;
  int64_t frac = 0;
  int n = std::sscanf(std::string(s).c_str(), "%u:%u:%u", &h, &m, &sec);
  if (n < 2 || h > 23 || m > 59 || sec > 59) return false;
  if (auto dot = s.find('.'); dot != std::string_view::npos) {
    std::string digits;
    for (std::size_t i = dot + 1; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]));
         ++i)
      digits += s[i];
    digits.resize(9, '0');
    frac = std::stoll(digits.substr(0, 9));
  }
  nanos = ((static_cast<int64_t>(h) * 60 + m) * 60 + sec) * 1'000'000'000LL + frac;
  return true;
}

// Parses "yyyy-mm-dd[( |T)hh:mm[:ss[.fff]]][Z|+hhmm|-hhmm]" into milliseconds since the epoch.
bool parse_timestamp(const std::string& s, int64_t& ms) {
  int y = 0;
  unsigned mo = 0, d = 0;
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%d-%u-%u%n", &y, &mo, &d, &consumed) != 3 || mo < 1 || mo > 12 ||
      d < 1 || d > 31)
    return false;
  int64_t nanos = 0;
  std::string rest = s.substr(static_cast<std::size_t>(consumed));
  int64_t offset_min = 0;
  if (!rest.empty() && (rest[0] == ' ' || rest[0] == 'T')) {
    rest = rest.substr(1);
    std::size_t tz = rest.find_first_of("Z+-");
    std::string tod = rest.substr(0, tz);
    if (!parse_time_of_day(tod, nanos)) return false;
    if (tz != std::string::npos && rest[tz] != 'Z') {
      int hh = 0, mm = 0;
      std::string off = rest.substr(tz + 1);
      off.erase(std::remove(off.begin(), off.end(), ':'), off.end());
      if (std::sscanf(off.c_str(), "%2d%2d", &hh, &mm) < 1) return false;
      offset_min = (hh * 60 + mm) * (rest[tz] == '-' ? -1 : 1);
    }
  } else if (!rest.empty()) {
    return false;
  }
  ms = days_from_civil(y, mo, d) * 86'400'000LL + nanos / 1'000'000 - offset_min * 60'000;
  return true;
}

std::mt19937_64& rng() {
  static std::mt19937_64 gen{std::random_device{}()};
  return gen;
}

}  // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A version 1 UUID for now; the 100ns timestamp strictly increases within the process.
Bytes timeuuid_now() {
  static std::atomic<uint64_t> last{0};
  static const uint64_t node_and_seq = rng()();
  uint64_t ts = static_cast<uint64_t>(now_ms()) * 10'000 + 0x01B21DD213814000ULL;
  uint64_t prev = last.load();
  do {
    if (ts <= prev) ts = prev + 1;
  } while (!last.compare_exchange_weak(prev, ts));
  uint64_t msb = (ts << 32) | ((ts >> 16) & 0xFFFF0000ULL) | 0x1000ULL | ((ts >> 48) & 0x0FFFULL);
  uint64_t lsb = (node_and_seq & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  Bytes out = be_int(static_cast<int64_t>(msb), 8);
  Bytes low = be_int(static_cast<int64_t>(lsb), 8);
  out.insert(out.end(), low.begin(), low.end());
  return out;
}

Bytes random_uuid() {
  uint64_t msb = (rng()() & ~0xF000ULL) | 0x4000ULL;
  uint64_t lsb = (rng()() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  Bytes out = be_int(static_cast<int64_t>(msb), 8);
  Bytes low = be_int(static_cast<int64_t>(lsb), 8);
  out.insert(out.end(), low.begin(), low.end());
  return out;
}

int64_t read_be(const Bytes& b) {
  uint64_t v = 0;
  for (auto x : b) v = (v << 8) | std::to_integer<uint8_t>(x);
  if (!b.empty() && b.size() < 8 && (std::to_integer<uint8_t>(b[0]) & 0x80))
    v |= ~0ULL << (8 * b.size());
  return static_cast<int64_t>(v);
}

// Milliseconds since the epoch of a version 1 UUID.
int64_t timeuuid_ms(const Bytes& b) {
  if (b.size() != 16) return 0;
  auto u = [&](std::size_t i) { return static_cast<uint64_t>(std::to_integer<uint8_t>(b[i])); };
  uint64_t ts = ((u(6) & 0x0F) << 56) | (u(7) << 48) | (u(4) << 40) | (u(5) << 32) | (u(0) << 24) |
                (u(1) << 16) | (u(2) << 8) | u(3);
  return static_cast<int64_t>((ts - 0x01B21DD213814000ULL) / 10'000);
}

namespace {

int compare_bytes(const Bytes& a, const Bytes& b) {
  std::size_t n = std::min(a.size(), b.size());
  if (n) {
    int c = std::memcmp(a.data(), b.data(), n);
    if (c != 0) return c < 0 ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

int fixed_width(TypeId id) {
  switch (id) {
    case TypeId::kInt:
    case TypeId::kFloat:
    case TypeId::kDate:
      return 4;
    case TypeId::kBigint:
    case TypeId::kCounter:
    case TypeId::kTimestamp:
    case TypeId::kDouble:
    case TypeId::kTime:
      return 8;
    case TypeId::kSmallint:
      return 2;
    case TypeId::kTinyint:
    case TypeId::kBoolean:
      return 1;
    case TypeId::kUuid:
    case TypeId::kTimeuuid:
      return 16;
    default:
      return -1;
  }
}

Cell function_value(const Term& t, const DataType& type, const std::string& column) {
  const std::string& f = t.text;
  // The time a function's argument names: now() by default, else a timeuuid / timestamp literal.
  auto arg_ms = [&]() -> int64_t {
    if (t.elems.empty()) return now_ms();
    const Term& a = t.elems[0];
    if (a.kind == Term::Kind::kFunction && (a.text == "now" || a.text == "currenttimeuuid"))
      return timeuuid_ms(timeuuid_now());
    if (a.kind == Term::Kind::kFunction &&
        (a.text == "currenttimestamp" || a.text == "currentdate"))
      return now_ms();
    if (a.kind == Term::Kind::kUuid) return timeuuid_ms(uuid_from_string(a.text));
    Cell c = literal_to_cell(a, DataType::of(TypeId::kTimestamp), column);
    return c ? read_be(*c) : now_ms();
  };
  if (f == "now" || f == "currenttimeuuid") {
    if (type.id != TypeId::kTimeuuid && type.id != TypeId::kUuid) bad_literal(t, type, column);
    return timeuuid_now();
  }
  if (f == "uuid") {
    if (type.id != TypeId::kUuid) bad_literal(t, type, column);
    return random_uuid();
  }
  if (f == "totimestamp" || f == "tounixtimestamp" || f == "currenttimestamp" || f == "dateof" ||
      f == "unixtimestampof") {
    if (type.id != TypeId::kTimestamp && type.id != TypeId::kBigint) bad_literal(t, type, column);
    return be_int(arg_ms(), 8);
  }
  if (f == "currentdate" || f == "todate") {
    if (type.id != TypeId::kDate) bad_literal(t, type, column);
    int64_t ms = arg_ms();
    int64_t days = ms >= 0 ? ms / 86'400'000 : (ms - 86'399'999) / 86'400'000;
    return be_int(days + (1LL << 31), 4);
  }
  if (f == "currenttime") {
    if (type.id != TypeId::kTime) bad_literal(t, type, column);
    int64_t ms = now_ms() % 86'400'000;
    return be_int(ms * 1'000'000, 8);
  }
  throw InvalidRequest("Unknown function '" + f + "'");
}

}  // namespace

Bytes be_int(int64_t v, int width) {
  Bytes out(static_cast<std::size_t>(width));
  for (int i = width - 1; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<std::byte>(v & 0xff);
    v >>= 8;
  }
  return out;
}

Bytes text_bytes(const std::string& s) {
  Bytes out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

Bytes collection_value(const std::vector<Bytes>& elems, std::size_t count) {
  Bytes out = be_int(static_cast<int64_t>(count), 4);
  for (const auto& e : elems) {
    Bytes len = be_int(static_cast<int64_t>(e.size()), 4);
    out.insert(out.end(), len.begin(), len.end());
    out.insert(out.end(), e.begin(), e.end());
  }
  return out;
}

Bytes text_set(const std::vector<std::string>& items) {
  std::vector<std::string> sorted = items;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<Bytes> elems;
  for (const auto& s : sorted) elems.push_back(text_bytes(s));
  return collection_value(elems, elems.size());
}

Bytes text_map(const std::vector<std::pair<std::string, std::string>>& items) {
  auto sorted = items;
  std::sort(sorted.begin(), sorted.end());
  std::vector<Bytes> elems;
  for (const auto& [k, v] : sorted) {
    elems.push_back(text_bytes(k));
    elems.push_back(text_bytes(v));
  }
  return collection_value(elems, sorted.size());
}

std::vector<Bytes> collection_elements(const Bytes& b) {
  cql::Reader r(b);
  int32_t n = r.read_int();
  if (n < 0) throw InvalidRequest("negative collection size");
  std::vector<Bytes> out;
  std::size_t count = static_cast<std::size_t>(n);
  // A map value has 2n elements; the caller knows which; read until the end.
  while (r.remaining() > 0) {
    auto e = r.read_bytes();
    if (!e) throw InvalidRequest("null is not supported inside collections");
    out.push_back(std::move(*e));
  }
  if (out.size() != count && out.size() != 2 * count)
    throw InvalidRequest("collection size mismatch");
  return out;
}

void validate_value(const Bytes& b, const DataType& type) {
  int w = fixed_width(type.id);
  if (w > 0) {
    if (!b.empty() && b.size() != static_cast<std::size_t>(w))
      throw InvalidRequest("Expected " + std::to_string(w) + " or 0 byte " +
                           cql::cql_type_name(type) + " (" + std::to_string(b.size()) + ")");
    return;
  }
  switch (type.id) {
    case TypeId::kInet:
      if (!b.empty() && b.size() != 4 && b.size() != 16)
        throw InvalidRequest("Invalid inet address length " + std::to_string(b.size()));
      return;
    case TypeId::kDecimal:
      if (!b.empty() && b.size() < 4) throw InvalidRequest("Invalid decimal value");
      return;
    case TypeId::kAscii:
      for (auto x : b)
        if (std::to_integer<uint8_t>(x) > 0x7f) throw InvalidRequest("Invalid byte for ascii");
      return;
    case TypeId::kList:
    case TypeId::kSet:
    case TypeId::kMap: {
      if (b.empty()) return;
      std::vector<Bytes> elems;
      try {
        elems = collection_elements(b);
      } catch (const cql::ProtocolError&) {
        throw InvalidRequest("Not enough bytes to read a " + cql::cql_type_name(type));
      }
      for (std::size_t i = 0; i < elems.size(); ++i) {
        const DataType& et = type.id == TypeId::kMap ? type.params.at(i % 2) : type.params.at(0);
        validate_value(elems[i], et);
      }
      return;
    }
    default:
      return;
  }
}

int compare_values(const Bytes& a, const Bytes& b, const DataType& type) {
  switch (type.id) {
    case TypeId::kInt:
    case TypeId::kBigint:
    case TypeId::kCounter:
    case TypeId::kSmallint:
    case TypeId::kTinyint:
    case TypeId::kTimestamp:
    case TypeId::kTime:
    case TypeId::kVarint: {
      if (a.empty() || b.empty() || a.size() > 8 || b.size() > 8) {
        if (a.size() != b.size() || a.size() > 8) return compare_bytes(a, b);
      }
      int64_t x = read_be(a), y = read_be(b);
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    case TypeId::kDouble:
    case TypeId::kFloat: {
      if (a.size() != b.size() || (a.size() != 4 && a.size() != 8)) return compare_bytes(a, b);
      double x, y;
      if (a.size() == 4) {
        x = std::bit_cast<float>(static_cast<uint32_t>(read_be(a)));
        y = std::bit_cast<float>(static_cast<uint32_t>(read_be(b)));
      } else {
        x = std::bit_cast<double>(read_be(a));
        y = std::bit_cast<double>(read_be(b));
      }
      return x < y ? -1 : (x > y ? 1 : compare_bytes(a, b));
    }
    case TypeId::kTimeuuid: {
      int64_t x = timeuuid_ms(a), y = timeuuid_ms(b);
      if (x != y) return x < y ? -1 : 1;
      return compare_bytes(a, b);
    }
    default:
      return compare_bytes(a, b);
  }
}

int compare_cells(const Cell& a, const Cell& b, const DataType& type) {
  if (!a || !b) return a ? 1 : (b ? -1 : 0);
  return compare_values(*a, *b, type);
}

Cell literal_to_cell(const Term& t, const DataType& type, const std::string& column) {
  if (t.kind == Term::Kind::kNull) return std::nullopt;
  if (t.kind == Term::Kind::kFunction) return function_value(t, type, column);
  switch (type.id) {
    case TypeId::kInt:
      return be_int(parse_int(t, type, column, INT32_MIN, INT32_MAX), 4);
    case TypeId::kBigint:
    case TypeId::kCounter:
      return be_int(parse_int(t, type, column, INT64_MIN, INT64_MAX), 8);
    case TypeId::kSmallint:
      return be_int(parse_int(t, type, column, INT16_MIN, INT16_MAX), 2);
    case TypeId::kTinyint:
      return be_int(parse_int(t, type, column, INT8_MIN, INT8_MAX), 1);
    case TypeId::kVarint:
      if (t.kind != Term::Kind::kInteger) bad_literal(t, type, column);
      return varint_from_decimal(t.text);
    case TypeId::kDecimal:
      if (t.kind != Term::Kind::kInteger && t.kind != Term::Kind::kFloat)
        bad_literal(t, type, column);
      return decimal_from_text(t.text);
    case TypeId::kDouble:
    case TypeId::kFloat: {
      if (t.kind != Term::Kind::kInteger && t.kind != Term::Kind::kFloat)
        bad_literal(t, type, column);
      double v;
      std::string s = lower(t.text);
      if (s == "nan" || s == "-nan") {
        v = std::nan("");
      } else if (s == "infinity" || s == "-infinity") {
        v = s[0] == '-' ? -INFINITY : INFINITY;
      } else {
        v = std::strtod(t.text.c_str(), nullptr);
      }
      if (type.id == TypeId::kFloat)
        return be_int(std::bit_cast<uint32_t>(static_cast<float>(v)), 4);
      return be_int(std::bit_cast<int64_t>(v), 8);
    }
    case TypeId::kBoolean:
      if (t.kind != Term::Kind::kBoolean) bad_literal(t, type, column);
      return Bytes{std::byte{t.text == "true" ? uint8_t{1} : uint8_t{0}}};
    case TypeId::kVarchar:
    case TypeId::kAscii:
      if (t.kind != Term::Kind::kString) bad_literal(t, type, column);
      if (type.id == TypeId::kAscii)
        for (char c : t.text)
          if (static_cast<unsigned char>(c) > 0x7f) bad_literal(t, type, column);
      return text_bytes(t.text);
    case TypeId::kUuid:
    case TypeId::kTimeuuid:
      if (t.kind != Term::Kind::kUuid) bad_literal(t, type, column);
      if (type.id == TypeId::kTimeuuid && t.text[14] != '1') bad_literal(t, type, column);
      return uuid_from_string(t.text);
    case TypeId::kBlob:
      if (t.kind != Term::Kind::kHex || t.text.size() % 2) bad_literal(t, type, column);
      {
        Bytes out;
        for (std::size_t i = 0; i < t.text.size(); i += 2)
          out.push_back(static_cast<std::byte>(std::stoi(t.text.substr(i, 2), nullptr, 16)));
        return out;
      }
    case TypeId::kInet: {
      if (t.kind != Term::Kind::kString) bad_literal(t, type, column);
      unsigned char buf[16];
      if (inet_pton(AF_INET, t.text.c_str(), buf) == 1)
        return Bytes(reinterpret_cast<std::byte*>(buf), reinterpret_cast<std::byte*>(buf) + 4);
      if (inet_pton(AF_INET6, t.text.c_str(), buf) == 1)
        return Bytes(reinterpret_cast<std::byte*>(buf), reinterpret_cast<std::byte*>(buf) + 16);
      bad_literal(t, type, column);
    }
    case TypeId::kTimestamp: {
      if (t.kind == Term::Kind::kInteger)
        return be_int(parse_int(t, type, column, INT64_MIN, INT64_MAX), 8);
      int64_t ms = 0;
      if (t.kind != Term::Kind::kString || !parse_timestamp(t.text, ms))
        bad_literal(t, type, column);
      return be_int(ms, 8);
    }
    case TypeId::kDate: {
      if (t.kind == Term::Kind::kInteger)
        return be_int(parse_int(t, type, column, 0, UINT32_MAX), 4);
      int64_t ms = 0;
      if (t.kind != Term::Kind::kString || t.text.size() > 11 || !parse_timestamp(t.text, ms))
        bad_literal(t, type, column);
      return be_int(ms / 86'400'000 + (1LL << 31), 4);
    }
    case TypeId::kTime: {
      if (t.kind == Term::Kind::kInteger)
        return be_int(parse_int(t, type, column, 0, 86'400'000'000'000LL - 1), 8);
      int64_t nanos = 0;
      if (t.kind != Term::Kind::kString || !parse_time_of_day(t.text, nanos))
        bad_literal(t, type, column);
      return be_int(nanos, 8);
    }
    case TypeId::kList:
    case TypeId::kSet:
    case TypeId::kMap: {
      bool is_map = type.id == TypeId::kMap;
      bool ok = (type.id == TypeId::kList && t.kind == Term::Kind::kList) ||
                (type.id == TypeId::kSet && t.kind == Term::Kind::kSet) ||
                (is_map && t.kind == Term::Kind::kMap) ||
                (t.kind == Term::Kind::kSet && t.elems.empty());
      if (!ok) bad_literal(t, type, column);
      std::vector<Bytes> elems;
      for (std::size_t i = 0; i < t.elems.size(); ++i) {
        const DataType& et = is_map ? type.params.at(i % 2) : type.params.at(0);
        Cell c = literal_to_cell(t.elems[i], et, column);
        if (!c) throw InvalidRequest("null is not supported inside collections");
        elems.push_back(std::move(*c));
      }
      std::size_t count = is_map ? elems.size() / 2 : elems.size();
      if (type.id == TypeId::kSet) {
        const DataType& et = type.params.at(0);
        std::sort(elems.begin(), elems.end(),
                  [&](const Bytes& a, const Bytes& b) { return compare_values(a, b, et) < 0; });
        elems.erase(std::unique(elems.begin(), elems.end()), elems.end());
        count = elems.size();
      } else if (is_map) {
        std::vector<std::pair<Bytes, Bytes>> kv;
        for (std::size_t i = 0; i + 1 < elems.size(); i += 2)
          kv.emplace_back(elems[i], elems[i + 1]);
        const DataType& kt = type.params.at(0);
        std::stable_sort(kv.begin(), kv.end(), [&](const auto& a, const auto& b) {
          return compare_values(a.first, b.first, kt) < 0;
        });
        elems.clear();
        for (std::size_t i = 0; i < kv.size(); ++i) {
          if (i + 1 < kv.size() && compare_values(kv[i].first, kv[i + 1].first, kt) == 0)
            continue;  // the last value for a key wins
          elems.push_back(kv[i].first);
          elems.push_back(kv[i].second);
        }
        count = elems.size() / 2;
      }
      return collection_value(elems, count);
    }
    default:
      throw InvalidRequest("literals of type " + cql::cql_type_name(type) +
                           " are not supported by zdm-testcluster; use a bind marker");
  }
}

Bytes uuid_from_string(const std::string& s) {
  Bytes out;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '-') {
      ++i;
      continue;
    }
    if (i + 1 >= s.size()) throw InvalidRequest("invalid uuid " + s);
    out.push_back(static_cast<std::byte>(std::stoi(s.substr(i, 2), nullptr, 16)));
    i += 2;
  }
  if (out.size() != 16) throw InvalidRequest("invalid uuid " + s);
  return out;
}

std::string uuid_to_string(const Bytes& b) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    uint8_t v = std::to_integer<uint8_t>(b[i]);
    out += hex[v >> 4];
    out += hex[v & 0xf];
  }
  return out;
}

Bytes md5(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr);
  return Bytes(reinterpret_cast<std::byte*>(digest), reinterpret_cast<std::byte*>(digest) + len);
}

Bytes uuid_from_seed(const std::string& seed) {
  Bytes b = md5(seed);
  b[6] = static_cast<std::byte>((std::to_integer<uint8_t>(b[6]) & 0x0f) | 0x40);
  b[8] = static_cast<std::byte>((std::to_integer<uint8_t>(b[8]) & 0x3f) | 0x80);
  return b;
}

}  // namespace zdm::testcluster
