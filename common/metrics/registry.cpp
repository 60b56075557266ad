#include "common/metrics/registry.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace zdm::metrics {

Histogram::Histogram(std::vector<double> bounds_s)
    : bounds_(std::move(bounds_s)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

Registry::Family& Registry::family(const std::string& name, const std::string& help,
                                   const char* type) {
  auto& f = families_[name];
  if (f.type.empty()) {
    f.help = help;
    f.type = type;
  }
  return f;
}

Counter& Registry::counter(const std::string& name, const std::string& help,
                           const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, help, "counter");
  auto& slot = f.counters[labels];
  if (!slot) slot = &counters_.emplace_back();
  return *slot;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help,
                       const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, help, "gauge");
  auto& slot = f.gauges[labels];
  if (!slot) slot = &gauges_.emplace_back();
  return *slot;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help,
                               const std::vector<double>& bounds_s, const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& f = family(name, help, "histogram");
  auto& slot = f.histograms[labels];
  if (!slot) slot = histograms_.emplace_back(std::make_unique<Histogram>(bounds_s)).get();
  return *slot;
}

namespace {

std::string with_label(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return "{" + labels + "," + extra + "}";
}

std::string braces(const std::string& labels) {
  return labels.empty() ? "" : "{" + labels + "}";
}

void render_process(std::string& out) {
  long ticks = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  std::ifstream stat("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto rparen = content.rfind(')');
  if (rparen == std::string::npos) return;
  std::istringstream fields(content.substr(rparen + 2));
  std::vector<std::string> f;
  std::string tok;
  while (fields >> tok) f.push_back(tok);
  // Fields after ')' start at field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24.
  auto at = [&](int field) { return std::stod(f.at(static_cast<std::size_t>(field - 3))); };
  double cpu = (at(14) + at(15)) / static_cast<double>(ticks);
  double boot_time = 0;
  std::ifstream st("/proc/stat");
  std::string line;
  while (std::getline(st, line))
    if (line.rfind("btime ", 0) == 0) boot_time = std::stod(line.substr(6));
  int fds = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++fds;
    closedir(d);
    fds -= 3;  // ".", ".." and the directory's own fd
  }
  out +=
      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
      "# TYPE process_cpu_seconds_total counter\n";
  out += fmt::format("process_cpu_seconds_total {}\n", cpu);
  out +=
      "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\n";
  out += fmt::format("process_open_fds {}\n", fds);
  struct rlimit nofile {};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    out +=
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\n";
    out += fmt::format("process_max_fds {}\n", static_cast<double>(nofile.rlim_cur));
  }
  out +=
      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
      "# TYPE process_resident_memory_bytes gauge\n";
  out += fmt::format("process_resident_memory_bytes {}\n", at(24) * static_cast<double>(page));
  out +=
      "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
      "# TYPE process_virtual_memory_bytes gauge\n";
  out += fmt::format("process_virtual_memory_bytes {}\n", at(23));
  out +=
      "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
      "# TYPE process_start_time_seconds gauge\n";
  out += fmt::format("process_start_time_seconds {}\n",
                     boot_time + at(22) / static_cast<double>(ticks));
}

}  // namespace

void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const Histogram& h) {
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bounds().size(); ++i) {
    cumulative += h.bucket(i);
    out += fmt::format("{}_bucket{} {}\n", name,
                       with_label(labels, fmt::format("le=\"{}\"", h.bounds()[i])), cumulative);
  }
  cumulative += h.bucket(h.bounds().size());
  out += fmt::format("{}_bucket{} {}\n", name, with_label(labels, "le=\"+Inf\""), cumulative);
  out += fmt::format("{}_sum{} {}\n", name, braces(labels), h.sum());
  out += fmt::format("{}_count{} {}\n", name, braces(labels), h.count());
}

void Registry::add_collector(std::function<void(std::string&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::render() const {
  std::string out;
  std::vector<std::function<void(std::string&)>> collectors;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, f] : families_) {
      out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
      for (const auto& [labels, c] : f.counters)
        out += fmt::format("{}{} {}\n", name, braces(labels), c->value());
      for (const auto& [labels, g] : f.gauges)
        out += fmt::format("{}{} {}\n", name, braces(labels), g->value());
      for (const auto& [labels, h] : f.histograms) render_histogram(out, name, labels, *h);
    }
    collectors = collectors_;
  }
  render_process(out);
  for (const auto& c : collectors) c(out);
  return out;
}

}  // namespace zdm::metrics
