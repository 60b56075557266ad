// A latency histogram for cqlbench: log-linear buckets (HdrHistogram's layout with 64 linear
// sub-buckets per power of two, so every value is kept within 1/64 ≈ 1.6 %), fixed size, no
// allocation when recording. Values are nanoseconds; anything above ~2^40 ns (18 minutes) lands
// in the last bucket.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace zdm::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 6;                // 64 sub-buckets per power of two
  static constexpr uint64_t kSub = 1u << kSubBits;  // values below 2*kSub are exact
  static constexpr int kMaxBits = 40;
  static constexpr std::size_t kBuckets = 2 * kSub + (kMaxBits - kSubBits - 1) * kSub;

  /// Bucket of value `v`: exact below 2*kSub, then kSub buckets per power of two.
  static constexpr std::size_t index(uint64_t v) {
    if (v < 2 * kSub) return static_cast<std::size_t>(v);
    int msb = 63 - std::countl_zero(v);  // >= kSubBits + 1
    if (msb >= kMaxBits) return kBuckets - 1;
    int shift = msb - kSubBits;  // >= 1
    uint64_t top = v >> shift;   // in [kSub, 2*kSub)
    return static_cast<std::size_t>(2 * kSub + (shift - 1) * kSub + (top - kSub));
  }
  /// The largest value that falls in bucket `i` (what a percentile reports: never optimistic).
  static constexpr uint64_t upper(std::size_t i) {
    if (i < 2 * kSub) return i;
    std::size_t j = i - 2 * kSub;
    int shift = static_cast<int>(j / kSub) + 1;
    uint64_t top = kSub + j % kSub;
    return ((top + 1) << shift) - 1;
  }

  void record(uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
    max_ = std::max(max_, ns);
    sum_ += ns;
  }
  void add(const Histogram& o) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
    sum_ += o.sum_;
  }
  void reset() { *this = Histogram(); }

  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }
  double mean() const { return total_ ? static_cast<double>(sum_) / total_ : 0; }
  /// The value at quantile `q` (0..1): the upper bound of the bucket holding the ceil(q*n)-th
  /// smallest value, capped at the largest value recorded; 0 when empty.
  uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_) + 0.999999);
    rank = std::clamp<uint64_t>(rank, 1, total_);
    uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper(i), max_);
    }
    return max_;
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0, max_ = 0, sum_ = 0;
};

}  // namespace zdm::bench
