// A Prometheus metrics registry: counters, gauges and histograms with labels, rendered in the
// Prometheus text exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/),
// with the process_* series of the Prometheus client libraries. Updates are lock-free atomics;
// series creation and rendering take a mutex. Used by zdm-proxy, zdm-data and zdm-testcluster.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace zdm::metrics {

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void add(int64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  void sub(int64_t n = 1) { v_.fetch_sub(n, std::memory_order_relaxed); }
  void set(int64_t n) { v_.store(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

/// Cumulative histogram; bucket bounds in seconds (upper bounds, +Inf implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds_s);
  void observe(double seconds);
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t bucket(std::size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket (non-cumulative)
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

/// A set of metric families; series are created on first use and live as long as the registry.
class Registry {
 public:
  Counter& counter(const std::string& name, const std::string& help,
                   const std::string& labels = "");
  Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = "");
  Histogram& histogram(const std::string& name, const std::string& help,
                       const std::vector<double>& bounds_s, const std::string& labels = "");
  /// Appends families computed at render time (e.g. aliases); called after `process_*`.
  void add_collector(std::function<void(std::string&)> collector);
  /// Text exposition of every series, families sorted by name; `process_*` and the
  /// collectors' families appended.
  std::string render() const;

 private:
  struct Family {
    std::string help, type;
    std::map<std::string, Counter*> counters;
    std::map<std::string, Gauge*> gauges;
    std::map<std::string, Histogram*> histograms;
  };
  Family& family(const std::string& name, const std::string& help, const char* type);
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<std::unique_ptr<Histogram>> histograms_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

/// Appends one histogram's _bucket/_sum/_count lines (cumulative buckets, le in seconds).
void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const Histogram& h);

}  // namespace zdm::metrics
