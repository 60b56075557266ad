// Body notations of the native protocol (native_protocol_v4.spec §3): a Reader cursor with one
// method per notation, mirrored by a Writer that appends.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cql/frame.h"

namespace zdm::cql {

/// Consistency levels, native_protocol_v4.spec §3 [consistency].
enum class Consistency : uint16_t {
  kAny = 0x0000,
  kOne = 0x0001,
  kTwo = 0x0002,
  kThree = 0x0003,
  kQuorum = 0x0004,
  kAll = 0x0005,
  kLocalQuorum = 0x0006,
  kEachQuorum = 0x0007,
  kSerial = 0x0008,
  kLocalSerial = 0x0009,
  kLocalOne = 0x000A,
};
/// "LOCAL_QUORUM" etc.
std::string consistency_name(Consistency c);

/// A [value] (§3): bytes, null (length -1) or unset (length -2, v4+).
struct Value {
  enum class Kind : uint8_t { kNormal, kNull, kUnset };
  Kind kind = Kind::kNull;
  Bytes bytes;

  static Value of(Bytes b) { return Value{Kind::kNormal, std::move(b)}; }
  static Value null() { return Value{Kind::kNull, {}}; }
  static Value unset() { return Value{Kind::kUnset, {}}; }
  bool is_null() const { return kind == Kind::kNull; }
  bool operator==(const Value&) const = default;
};

/// An [inet] (§3): address bytes (4 or 16) and port.
struct Inet {
  Bytes address;
  int32_t port = 0;
  bool operator==(const Inet&) const = default;
};

using StringMap = std::map<std::string, std::string>;
using StringMultimap = std::map<std::string, std::vector<std::string>>;

/// Cursor over a frame body. Every read checks the remaining length and throws ProtocolError
/// "truncated frame: expected N bytes, length is M" on a short body.
class Reader {
 public:
  explicit Reader(BytesView body) : data_(body) {}

  uint8_t read_byte();
  uint16_t read_short();
  int32_t read_int();
  int64_t read_long();
  /// [string]: [short] n + n bytes UTF-8.
  std::string read_string();
  /// [long string]: [int] n + n bytes.
  std::string read_long_string();
  /// [bytes]: [int] n + n bytes; n < 0 means null (std::nullopt).
  std::optional<Bytes> read_bytes();
  /// [bytes] as a view into the body (no copy); nullopt for null.
  std::optional<BytesView> read_bytes_view();
  /// [short bytes]: [short] n + n bytes.
  Bytes read_short_bytes();
  /// [short bytes] as a view into the body (no copy).
  BytesView read_short_bytes_view() { return read_raw(read_short()); }
  /// [value]: [int] n; n >= 0 bytes, -1 null, -2 unset; other negatives are errors.
  Value read_value();
  std::vector<std::string> read_string_list();
  StringMap read_string_map();
  StringMultimap read_string_multimap();
  /// [consistency]; unknown codes throw "Unknown code N for a consistency level".
  Consistency read_consistency();
  Inet read_inet();
  /// [uuid]: 16 bytes.
  Bytes read_uuid();
  /// Raw n bytes.
  BytesView read_raw(std::size_t n);

  /// Checks a count read from the wire before anything is reserved for it: `count` items of at
  /// least `min_size` bytes each must fit in the bytes that remain. Throws ProtocolError
  /// "truncated frame: 70000 <what> need at least 280000 bytes, length is 12".
  void check_count(uint64_t count, std::size_t min_size, std::string_view what) const;

  std::size_t remaining() const { return data_.size() - pos_; }
  std::size_t position() const { return pos_; }
  BytesView rest() const { return data_.subspan(pos_); }

 private:
  void need(std::size_t n) const;
  BytesView data_;
  std::size_t pos_ = 0;
};

/// Appends notations to a byte buffer; mirror of Reader.
class Writer {
 public:
  explicit Writer(Bytes& out) : out_(out) {}

  void write_byte(uint8_t v);
  void write_short(uint16_t v);
  void write_int(int32_t v);
  void write_long(int64_t v);
  void write_string(std::string_view s);
  void write_long_string(std::string_view s);
  void write_bytes(const std::optional<Bytes>& b);
  void write_bytes(BytesView b);
  void write_bytes(const Bytes& b) { write_bytes(BytesView(b)); }
  void write_null_bytes();
  void write_short_bytes(BytesView b);
  void write_value(const Value& v);
  void write_string_list(const std::vector<std::string>& l);
  void write_string_map(const StringMap& m);
  void write_string_multimap(const StringMultimap& m);
  void write_consistency(Consistency c);
  void write_inet(const Inet& inet);
  void write_raw(BytesView b);
  /// Reserves an [int] to be filled later by patch_int (for lengths known only at the end).
  std::size_t write_int_placeholder();
  void patch_int(std::size_t at, int32_t v);

  Bytes& buffer() { return out_; }

 private:
  Bytes& out_;
};

/// Byte helpers for building values.
Bytes to_bytes(std::string_view s);
std::string to_string(BytesView b);

}  // namespace zdm::cql
