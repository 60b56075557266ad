// The process-wide memory ceiling (proxy_max_memory_bytes). Per-connection limits (write-queue
// watermarks, the large-frame budget, the frame size limit) bound what one client costs; this
// bounds what all of them cost together. Every 50 ms the proxy reads its resident set size
// (/proc/self/statm: one small read, no per-request cost); above kShedAbovePercent of the
// ceiling it asks each worker what its client connections hold in buffers (sizes the writers and
// frame readers already keep) and closes the heaviest first until what they hold covers the
// excess over kShedToPercent. Connections holding less than kMinShedBytes are never closed for
// memory: closing them would free next to nothing. The margin under the ceiling absorbs what
// can grow between two checks.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zdm::proxy {

/// How often the resident set size is read.
inline constexpr std::chrono::milliseconds kMemoryCheckInterval{50};
/// Shedding starts above this percentage of the ceiling ...
inline constexpr std::size_t kShedAbovePercent = 80;
/// ... and closes connections until what they held brings the estimate to this percentage.
inline constexpr std::size_t kShedToPercent = 65;
/// Connections holding fewer buffered bytes are never closed for memory.
inline constexpr std::size_t kMinShedBytes = 1 << 20;
/// The default ceiling (proxy_max_memory_bytes 0): this percentage of the memory limit.
inline constexpr std::size_t kDefaultCeilingPercent = 75;

/// The resident set size in /proc/self/statm's text ("size resident shared ...", in pages), in
/// bytes; nullopt if unreadable.
std::optional<std::size_t> rss_of_statm(std::string_view statm, std::size_t page_size);
/// This process's resident set size in bytes, from /proc/self/statm; nullopt where unreadable.
std::optional<std::size_t> resident_bytes();

/// A cgroup memory limit file: v2 memory.max ("max" = none) or v1 memory.limit_in_bytes (a
/// value near 2^63 = none) → bytes; nullopt when unlimited or unreadable.
std::optional<std::size_t> memory_limit_of_cgroup(std::string_view text);

/// The configured ceiling, or the default one, and where it came from (for the start-up log).
struct MemoryCeiling {
  std::size_t bytes = 0;
  std::string source;  // "proxy_max_memory_bytes", "75 % of the cgroup memory limit (N bytes)"...
};
/// `configured` > 0: that. 0: kDefaultCeilingPercent of min(cgroup limit, physical memory), the
/// cgroup read as cpus.cpp does (/proc/self/cgroup, /sys/fs/cgroup).
MemoryCeiling memory_ceiling(long long configured);
/// The same from given limits (tests): `cgroup` may be nullopt, `physical` 0 when unknown.
MemoryCeiling memory_ceiling(long long configured, std::optional<std::size_t> cgroup,
                             std::size_t physical);

/// RSS above which shedding starts, and the estimate it sheds down to.
inline std::size_t shed_above(std::size_t ceiling) {
  return ceiling / 100 * kShedAbovePercent;
}
inline std::size_t shed_to(std::size_t ceiling) {
  return ceiling / 100 * kShedToPercent;
}

/// The connections to close, as indexes into `held` (bytes each holds): the heaviest first, only
/// those holding at least `floor` bytes, until the bytes chosen reach `excess`.
std::vector<std::size_t> choose_victims(const std::vector<std::size_t>& held, std::size_t excess,
                                        std::size_t floor = kMinShedBytes);

}  // namespace zdm::proxy
