#include "common/cql/notation.h"

#include <cstdint>
#include <cstring>

namespace zdm::cql {

std::string consistency_name(Consistency c) {
  switch (c) {
    case Consistency::kAny:
      return "ANY";
    case Consistency::kOne:
      return "ONE";
    case Consistency::kTwo:
      return "TWO";
    case Consistency::kThree:
      return "THREE";
    case Consistency::kQuorum:
      return "QUORUM";
    case Consistency::kAll:
      return "ALL";
    case Consistency::kLocalQuorum:
      return "LOCAL_QUORUM";
    case Consistency::kEachQuorum:
      return "EACH_QUORUM";
    case Consistency::kSerial:
      return "SERIAL";
    case Consistency::kLocalSerial:
      return "LOCAL_SERIAL";
    case Consistency::kLocalOne:
      return "LOCAL_ONE";
  }
  return "UNKNOWN";
}

void Reader::need(std::size_t n) const {
  if (remaining() < n) {
    throw ProtocolError("truncated frame: expected " + std::to_string(n) + " bytes, length is " +
                        std::to_string(remaining()));
  }
}

void Reader::check_count(uint64_t count, std::size_t min_size, std::string_view what) const {
  // Divide rather than multiply: count * min_size can overflow 64 bits (rows * columns * 4).
  if (min_size == 0 || count <= remaining() / min_size) return;
  const bool overflow = count > UINT64_MAX / min_size;
  throw ProtocolError("truncated frame: " + std::to_string(count) + " " + std::string(what) +
                      " need at least " +
                      (overflow ? std::string("2^64") : std::to_string(count * min_size)) +
                      " bytes, length is " + std::to_string(remaining()));
}

uint8_t Reader::read_byte() {
  need(1);
  return std::to_integer<uint8_t>(data_[pos_++]);
}

uint16_t Reader::read_short() {
  need(2);
  uint16_t v = static_cast<uint16_t>((std::to_integer<uint16_t>(data_[pos_]) << 8) |
                                     std::to_integer<uint16_t>(data_[pos_ + 1]));
  pos_ += 2;
  return v;
}

int32_t Reader::read_int() {
  need(4);
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | std::to_integer<uint32_t>(data_[pos_ + i]);
  pos_ += 4;
  return static_cast<int32_t>(v);
}

int64_t Reader::read_long() {
  need(8);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | std::to_integer<uint64_t>(data_[pos_ + i]);
  pos_ += 8;
  return static_cast<int64_t>(v);
}

BytesView Reader::read_raw(std::size_t n) {
  need(n);
  BytesView v = data_.subspan(pos_, n);
  pos_ += n;
  return v;
}

std::string Reader::read_string() {
  uint16_t n = read_short();
  return to_string(read_raw(n));
}

std::string Reader::read_long_string() {
  int32_t n = read_int();
  if (n < 0) throw ProtocolError("negative [long string] length " + std::to_string(n));
  return to_string(read_raw(static_cast<std::size_t>(n)));
}

std::optional<BytesView> Reader::read_bytes_view() {
  int32_t n = read_int();
  if (n < 0) return std::nullopt;
  return read_raw(static_cast<std::size_t>(n));
}

std::optional<Bytes> Reader::read_bytes() {
  auto v = read_bytes_view();
  if (!v) return std::nullopt;
  return Bytes(v->begin(), v->end());
}

Bytes Reader::read_short_bytes() {
  uint16_t n = read_short();
  auto v = read_raw(n);
  return Bytes(v.begin(), v.end());
}

Value Reader::read_value() {
  int32_t n = read_int();
  if (n == -1) return Value::null();
  if (n == -2) return Value::unset();
  if (n < 0) throw ProtocolError("invalid [value] length " + std::to_string(n));
  auto v = read_raw(static_cast<std::size_t>(n));
  return Value::of(Bytes(v.begin(), v.end()));
}

std::vector<std::string> Reader::read_string_list() {
  uint16_t n = read_short();
  check_count(n, 2, "[string list] entries");
  std::vector<std::string> out;
  out.reserve(n);
  for (uint16_t i = 0; i < n; ++i) out.push_back(read_string());
  return out;
}

StringMap Reader::read_string_map() {
  uint16_t n = read_short();
  StringMap out;
  for (uint16_t i = 0; i < n; ++i) {
    std::string k = read_string();
    out[k] = read_string();
  }
  return out;
}

StringMultimap Reader::read_string_multimap() {
  uint16_t n = read_short();
  StringMultimap out;
  for (uint16_t i = 0; i < n; ++i) {
    std::string k = read_string();
    out[k] = read_string_list();
  }
  return out;
}

Consistency Reader::read_consistency() {
  uint16_t c = read_short();
  if (c > 0x000A)
    throw ProtocolError("Unknown code " + std::to_string(c) + " for a consistency level");
  return static_cast<Consistency>(c);
}

Inet Reader::read_inet() {
  uint8_t n = read_byte();
  if (n != 4 && n != 16) throw ProtocolError("invalid [inet] address length " + std::to_string(n));
  Inet inet;
  auto a = read_raw(n);
  inet.address.assign(a.begin(), a.end());
  inet.port = read_int();
  return inet;
}

Bytes Reader::read_uuid() {
  auto v = read_raw(16);
  return Bytes(v.begin(), v.end());
}

void Writer::write_byte(uint8_t v) {
  out_.push_back(static_cast<std::byte>(v));
}

void Writer::write_short(uint16_t v) {
  out_.push_back(static_cast<std::byte>(v >> 8));
  out_.push_back(static_cast<std::byte>(v & 0xff));
}

void Writer::write_int(int32_t v) {
  auto u = static_cast<uint32_t>(v);
  for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<std::byte>((u >> s) & 0xff));
}

void Writer::write_long(int64_t v) {
  auto u = static_cast<uint64_t>(v);
  for (int s = 56; s >= 0; s -= 8) out_.push_back(static_cast<std::byte>((u >> s) & 0xff));
}

void Writer::write_raw(BytesView b) {
  out_.insert(out_.end(), b.begin(), b.end());
}

void Writer::write_string(std::string_view s) {
  if (s.size() > 0xffff) throw ProtocolError("[string] longer than 65535 bytes");
  write_short(static_cast<uint16_t>(s.size()));
  write_raw(BytesView(reinterpret_cast<const std::byte*>(s.data()), s.size()));
}

void Writer::write_long_string(std::string_view s) {
  write_int(static_cast<int32_t>(s.size()));
  write_raw(BytesView(reinterpret_cast<const std::byte*>(s.data()), s.size()));
}

void Writer::write_bytes(const std::optional<Bytes>& b) {
  if (!b) return write_null_bytes();
  write_bytes(BytesView(*b));
}

void Writer::write_bytes(BytesView b) {
  write_int(static_cast<int32_t>(b.size()));
  write_raw(b);
}

void Writer::write_null_bytes() {
  write_int(-1);
}

void Writer::write_short_bytes(BytesView b) {
  if (b.size() > 0xffff) throw ProtocolError("[short bytes] longer than 65535 bytes");
  write_short(static_cast<uint16_t>(b.size()));
  write_raw(b);
}

void Writer::write_value(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNormal:
      return write_bytes(BytesView(v.bytes));
    case Value::Kind::kNull:
      return write_int(-1);
    case Value::Kind::kUnset:
      return write_int(-2);
  }
}

void Writer::write_string_list(const std::vector<std::string>& l) {
  write_short(static_cast<uint16_t>(l.size()));
  for (const auto& s : l) write_string(s);
}

void Writer::write_string_map(const StringMap& m) {
  write_short(static_cast<uint16_t>(m.size()));
  for (const auto& [k, v] : m) {
    write_string(k);
    write_string(v);
  }
}

void Writer::write_string_multimap(const StringMultimap& m) {
  write_short(static_cast<uint16_t>(m.size()));
  for (const auto& [k, v] : m) {
    write_string(k);
    write_string_list(v);
  }
}

void Writer::write_consistency(Consistency c) {
  write_short(static_cast<uint16_t>(c));
}

void Writer::write_inet(const Inet& inet) {
  write_byte(static_cast<uint8_t>(inet.address.size()));
  write_raw(inet.address);
  write_int(inet.port);
}

std::size_t Writer::write_int_placeholder() {
  std::size_t at = out_.size();
  write_int(0);
  return at;
}

void Writer::patch_int(std::size_t at, int32_t v) {
  auto u = static_cast<uint32_t>(v);
  for (int i = 0; i < 4; ++i) out_[at + i] = static_cast<std::byte>((u >> (24 - 8 * i)) & 0xff);
}

Bytes to_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return Bytes(p, p + s.size());
}

std::string to_string(BytesView b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace zdm::cql
