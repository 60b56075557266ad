// The Murmur3 token ring as zdm-data sees it: which node owns a token, and the ring cut into
// ranges (start, end] to scan one at a time. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace zdm::data {

/// Murmur3Partitioner's smallest token. No key hashes to it (Cassandra maps it to the largest),
/// so (kMinToken, kMaxToken] holds every partition.
inline constexpr int64_t kMinToken = INT64_MIN;
inline constexpr int64_t kMaxToken = INT64_MAX;

/// Tokens t with start < t <= end; never wraps (start < end).
struct TokenRange {
  int64_t start = kMinToken;
  int64_t end = kMaxToken;
  bool operator==(const TokenRange&) const = default;
  bool operator<(const TokenRange& o) const {
    return start != o.start ? start < o.start : end < o.end;
  }
  bool contains(int64_t token) const { return token > start && token <= end; }
};

/// "(start, end]".
std::string to_string(const TokenRange& r);

/// The nodes' tokens: a node owns the tokens after its predecessor's token up to its own (the
/// last token's successor wraps around to the first).
class Ring {
 public:
  /// Adds `node`'s tokens (decimal strings, as system.local/peers list them). Throws
  /// std::invalid_argument naming a token that is not a 64-bit integer.
  void add(std::size_t node, const std::vector<std::string>& tokens);
  /// The owner of `token` (the node whose token is the first >= token, wrapping). Requires
  /// a non-empty ring.
  std::size_t owner(int64_t token) const;
  /// The node's tokens in order, after all add() calls (sorted on first use).
  const std::vector<std::pair<int64_t, std::size_t>>& tokens() const;
  bool empty() const { return tokens_.empty(); }

 private:
  mutable std::vector<std::pair<int64_t, std::size_t>> tokens_;
  mutable bool sorted_ = true;
};

/// The full ring (kMinToken, kMaxToken] cut at every token of `ring` and into at least `splits`
/// equal pieces: each range lies within one node's ownership, so one replica answers its scan.
/// Sorted, disjoint, covering the whole ring. `splits` < 1 counts as 1.
std::vector<TokenRange> split_ring(const Ring& ring, int splits);

/// A set of tokens as sorted, disjoint, non-adjacent ranges (what a checkpoint says is done).
class RangeSet {
 public:
  void add(TokenRange r);
  /// The parts of `r` not in the set, in order.
  std::vector<TokenRange> missing(const TokenRange& r) const;
  bool covers(const TokenRange& r) const { return missing(r).empty(); }
  const std::vector<TokenRange>& ranges() const { return ranges_; }

 private:
  std::vector<TokenRange> ranges_;
};

/// Parses a signed 64-bit decimal token; throws std::invalid_argument naming it otherwise.
int64_t parse_token(const std::string& text);

}  // namespace zdm::data
