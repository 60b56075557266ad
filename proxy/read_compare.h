// Live comparison of mirrored reads (read_compare: true with DUAL_ASYNC_ON_SECONDARY): the
// secondary's answer to a mirrored read is compared with the primary's, cell by cell, over the
// first page's first read_compare_max_rows rows (the paging state is not followed). Mismatches
// are counted per table (zdm_proxy_read_mismatches_total{keyspace,table}, next to
// zdm_proxy_read_comparisons_total) and a bounded sample of the mismatching reads' partition
// keys is logged — keys only, never cell values.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "common/cql/compression.h"
#include "common/cql/frame.h"
#include "proxy/config.h"
#include "proxy/metrics.h"

namespace zdm::proxy {

/// The rows of a RESULT frame, reduced to a count and a 64-bit hash of every cell (length and
/// bytes, nulls distinct from empty values) of the first `max_rows` rows.
struct RowsDigest {
  int32_t rows = 0;  // rows in the page (all of them, not only those hashed)
  uint64_t hash = 0;
  bool operator==(const RowsDigest&) const = default;
};

/// The digest of response `frame` (its body compressed with `compression` when its flag says
/// so; inflated into `scratch`); nullopt when it is not a ROWS result or cannot be read
/// (native_protocol_v4.spec §4.2.5.2; v5 the same section). Never throws.
std::optional<RowsDigest> rows_digest(const cql::Bytes& frame, cql::Compression compression,
                                      cql::Bytes& scratch, int max_rows);

/// A partition key for logs: the bound values at `pk_indices` of EXECUTE `body` (custom payload
/// prefix ending at `prefix_end`), each as 0x-hex, joined by ':'; "" when they cannot be read.
std::string key_of_execute(cql::BytesView body, std::size_t prefix_end, uint8_t version,
                           const std::vector<uint16_t>& pk_indices);

/// Counts comparisons and mismatches by table; process-wide, thread-safe.
class ReadComparisons {
 public:
  ReadComparisons(const Config& config, metrics::Registry& registry)
      : config_(config), registry_(registry) {}
  /// One mirrored read of `table` ("ks.table") compared: `match` or not; `key` (may be "") is
  /// logged for a mismatch, at most kSamplesPerMinute times a minute.
  void record(const std::string& table, bool match, const std::string& key);
  static constexpr int kSamplesPerMinute = 20;

 private:
  const Config& config_;
  metrics::Registry& registry_;
  std::mutex mu_;
  std::map<std::string, std::pair<metrics::Counter*, metrics::Counter*>> series_;
  std::chrono::steady_clock::time_point window_{};
  int logged_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace zdm::proxy
