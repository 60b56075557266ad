#include "proxy/memory_guard.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <numeric>
#include <sstream>

namespace zdm::proxy {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

std::optional<std::size_t> cgroup_memory_limit() {
  // /proc/self/cgroup: "0::/path" (v2) or "N:memory:/path" (v1).
  std::istringstream lines(read_file("/proc/self/cgroup"));
  std::optional<std::size_t> limit;
  for (std::string line; std::getline(lines, line);) {
    auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
    std::optional<std::size_t> l;
    if (controllers.empty()) {
      l = memory_limit_of_cgroup(read_file("/sys/fs/cgroup" + path + "/memory.max"));
      if (!l) l = memory_limit_of_cgroup(read_file("/sys/fs/cgroup/memory.max"));
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      l = memory_limit_of_cgroup(
          read_file("/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes"));
      if (!l) l = memory_limit_of_cgroup(read_file("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
    }
    if (l) limit = limit ? std::min(*limit, *l) : *l;
  }
  return limit;
}

}  // namespace

std::optional<std::size_t> rss_of_statm(std::string_view statm, std::size_t page_size) {
  statm = trimmed(statm);
  auto space = statm.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  statm.remove_prefix(space + 1);
  std::size_t pages = 0;
  auto [end, ec] = std::from_chars(statm.data(), statm.data() + statm.size(), pages);
  if (ec != std::errc() || (end != statm.data() + statm.size() && *end != ' ')) return std::nullopt;
  return pages * page_size;
}

std::optional<std::size_t> resident_bytes() {
  // One read of a short file: ~ a few microseconds.
  std::ifstream in("/proc/self/statm");
  char buf[128] = {};
  in.read(buf, sizeof buf - 1);
  const long page = sysconf(_SC_PAGESIZE);
  return rss_of_statm(std::string_view(buf, static_cast<std::size_t>(in.gcount())),
                      page > 0 ? static_cast<std::size_t>(page) : 4096);
}

std::optional<std::size_t> memory_limit_of_cgroup(std::string_view text) {
  text = trimmed(text);
  unsigned long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;                       // "max", unreadable
  if (v >= (1ULL << 62)) return std::nullopt;  // v1's "unlimited": 2^63 rounded to pages
  return static_cast<std::size_t>(v);
}

MemoryCeiling memory_ceiling(long long configured, std::optional<std::size_t> cgroup,
                             std::size_t physical) {
  if (configured > 0) return {static_cast<std::size_t>(configured), "proxy_max_memory_bytes"};
  const char* what = "physical memory";
  std::size_t limit = physical;
  if (cgroup && (limit == 0 || *cgroup < limit)) {
    limit = *cgroup;
    what = "the cgroup memory limit";
  }
  if (limit == 0) return {std::size_t(4) << 30, "4 GiB (no memory limit could be read)"};
  return {limit / 100 * kDefaultCeilingPercent, std::to_string(kDefaultCeilingPercent) + " % of " +
                                                    what + " (" + std::to_string(limit) +
                                                    " bytes)"};
}

MemoryCeiling memory_ceiling(long long configured) {
  if (configured > 0) return memory_ceiling(configured, std::nullopt, 0);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const std::size_t physical =
      pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
  return memory_ceiling(configured, cgroup_memory_limit(), physical);
}

std::vector<std::size_t> choose_victims(const std::vector<std::size_t>& held, std::size_t excess,
                                        std::size_t floor) {
  std::vector<std::size_t> order(held.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return held[a] > held[b]; });
  std::vector<std::size_t> victims;
  std::size_t freed = 0;
  for (std::size_t i : order) {
    if (freed >= excess || held[i] < floor) break;
    victims.push_back(i);
    freed += held[i];
  }
  return victims;
}

}  // namespace zdm::proxy
