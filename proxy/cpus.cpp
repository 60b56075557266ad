#include "proxy/cpus.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace zdm::proxy {
namespace {

std::optional<long long> to_number(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<int> quota_cpus(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return std::nullopt;
  return static_cast<int>(std::max<long long>(1, (quota + period - 1) / period));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::optional<int> cpus_of_cgroup_v2(std::string_view cpu_max) {
  auto space = cpu_max.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto quota = to_number(cpu_max.substr(0, space));  // "max" → nullopt
  auto period = to_number(cpu_max.substr(space + 1));
  if (!quota || !period) return std::nullopt;
  return quota_cpus(*quota, *period);
}

std::optional<int> cpus_of_cgroup_v1(std::string_view quota_us, std::string_view period_us) {
  auto quota = to_number(quota_us);
  auto period = to_number(period_us);
  if (!quota || !period) return std::nullopt;
  return quota_cpus(*quota, *period);
}

int usable_cpus() {
  int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = std::max(1, CPU_COUNT(&set));
  // /proc/self/cgroup: "0::/path" (v2) or "N:cpu,cpuacct:/path" (v1).
  std::istringstream lines(read_file("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos) continue;
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1), path = line.substr(c2 + 1);
    std::optional<int> q;
    if (controllers.empty()) {
      q = cpus_of_cgroup_v2(read_file("/sys/fs/cgroup" + path + "/cpu.max"));
      if (!q) q = cpus_of_cgroup_v2(read_file("/sys/fs/cgroup/cpu.max"));
    } else if (("," + controllers + ",").find(",cpu,") != std::string::npos) {
      for (const std::string base : {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"}) {
        q = cpus_of_cgroup_v1(read_file(base + path + "/cpu.cfs_quota_us"),
                              read_file(base + path + "/cpu.cfs_period_us"));
        if (q) break;
      }
    }
    if (q) n = std::min(n, *q);
  }
  return n;
}

}  // namespace zdm::proxy
