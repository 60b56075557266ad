// A page of rows as it came off the wire: the RESULT body kept whole, its metadata decoded with
// the project's codec, and every cell a view into the body (no copy per value). Also the few
// value encodings zdm-data reads and writes itself (bigint, int, set<text>, inet). Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/cql/messages.h"

namespace zdm::data {

using cql::Bytes;
using cql::BytesView;
using Cell = std::optional<BytesView>;  // nullopt: null

class Page {
 public:
  /// Decodes a RESULT frame body of kind Rows (tracing/warning prefix skipped per `flags`).
  /// Throws cql::ProtocolError if the body is not a well-formed Rows result.
  static Page decode(Bytes body, uint8_t flags, uint8_t version);

  std::size_t rows() const { return rows_; }
  std::size_t columns() const { return columns_; }
  Cell at(std::size_t row, std::size_t col) const { return cells_[row * columns_ + col]; }
  /// The cells of one row, in column order.
  std::span<const Cell> row(std::size_t i) const {
    return {cells_.data() + i * columns_, columns_};
  }
  /// Index of the column named `name`, or -1.
  int column(const std::string& name) const;
  const cql::RowsMetadata& metadata() const { return metadata_; }
  /// The paging state to ask for the next page; nullopt on the last page.
  const std::optional<Bytes>& paging_state() const { return metadata_.paging_state; }
  /// Bytes of all cell values (what a page "weighs" for MB/s figures).
  std::size_t value_bytes() const { return value_bytes_; }

 private:
  Bytes body_;
  cql::RowsMetadata metadata_;
  std::size_t rows_ = 0, columns_ = 0, value_bytes_ = 0;
  std::vector<Cell> cells_;
};

/// Big-endian integers as CQL serializes bigint/int/...
int64_t read_bigint(BytesView v);
int32_t read_int(BytesView v);
Bytes bigint_bytes(int64_t v);
Bytes int_bytes(int32_t v);
/// set<text> / list<text>: [int n] then n × [int len][bytes]. Throws cql::ProtocolError.
std::vector<std::string> read_text_collection(BytesView v);
/// An inet value (4 or 16 bytes) as text; "" if it is neither.
std::string inet_text(BytesView v);

}  // namespace zdm::data
