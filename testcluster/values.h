// Values of zdm-testcluster: CQL literals to serialized bytes, validation of bound values,
// type-aware ordering, UUID helpers. Pure.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cql/types.h"
#include "testcluster/parser.h"

namespace zdm::testcluster {

using cql::Bytes;
using cql::DataType;
using cql::TypeId;
/// A stored cell: nullopt is null.
using Cell = std::optional<Bytes>;
/// Key column values (partition key or clustering components), in column order.
using Key = std::vector<Bytes>;

/// A request the server rejects with INVALID (0x2200).
class InvalidRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Serializes literal `t` (not a bind marker) as a value of `type` for column `column`.
/// Functions now(), uuid(), totimestamp(...), currenttimestamp() etc. are evaluated here.
/// Throws InvalidRequest when the literal does not fit the type.
Cell literal_to_cell(const Term& t, const DataType& type, const std::string& column);

/// Checks a bound value's bytes against `type` (fixed widths, collection framing).
/// Throws InvalidRequest ("Expected 4 or 0 byte int (3)").
void validate_value(const Bytes& b, const DataType& type);

/// Orders two values of `type`: <0, 0, >0. Null sorts first.
int compare_values(const Bytes& a, const Bytes& b, const DataType& type);
int compare_cells(const Cell& a, const Cell& b, const DataType& type);

/// Splits a serialized list/set/map (v3+ framing) into its elements (maps: k, v, k, v...).
std::vector<Bytes> collection_elements(const Bytes& b);
/// Frames elements as a list/set/map value.
Bytes collection_value(const std::vector<Bytes>& elems, std::size_t count);

/// Clocks and generated values, as Cassandra's functions produce them.
int64_t now_ms();
int64_t now_micros();
/// A version 1 UUID for now (strictly increasing within the process).
Bytes timeuuid_now();
/// A random (version 4) UUID.
Bytes random_uuid();
/// Milliseconds since the epoch of a version 1 UUID.
int64_t timeuuid_ms(const Bytes& b);
/// A big-endian signed integer of 1-8 bytes.
int64_t read_be(const Bytes& b);

Bytes uuid_from_string(const std::string& s);
std::string uuid_to_string(const Bytes& b);
/// A deterministic version-4-looking UUID from md5(seed).
Bytes uuid_from_seed(const std::string& seed);
Bytes md5(const std::string& data);

/// Big-endian encodings.
Bytes be_int(int64_t v, int width);
Bytes text_bytes(const std::string& s);
/// set<text> / map<text,text> / list<text> values.
Bytes text_set(const std::vector<std::string>& items);
Bytes text_map(const std::vector<std::pair<std::string, std::string>>& items);

}  // namespace zdm::testcluster
