#include "data/job.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <thread>

#include "common/http/server.h"

namespace zdm::data {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int32_t now_s() {
  return static_cast<int32_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
}

RetryHook retry_hook(Stats& stats, const std::string& cluster) {
  return [&stats, cluster](const std::string& reason) { stats.retries(cluster, reason).inc(); };
}

void log_exception(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{}: {}", what, ex.what());
  }
}

Setup prepare(const Options& o) {
  Setup s;
  s.options = o;
  try {
    s.origin_config = cluster_config(o, true);
    s.target_config = cluster_config(o, false);
  } catch (const OptionsError& e) {
    throw JobError(2, e.what());
  }
  asio::io_context ioc;
  std::exception_ptr origin_error, target_error;
  asio::co_spawn(
      ioc, [&]() -> awaitable<void> { s.origin = co_await discover(ioc, s.origin_config); },
      [&](std::exception_ptr e) { origin_error = e; });
  asio::co_spawn(
      ioc, [&]() -> awaitable<void> { s.target = co_await discover(ioc, s.target_config); },
      [&](std::exception_ptr e) { target_error = e; });
  ioc.run();
  for (auto e : {origin_error, target_error}) {
    if (!e) continue;
    try {
      std::rethrow_exception(e);
    } catch (const ClusterError& ex) {
      throw JobError(3, ex.what());
    } catch (const std::exception& ex) {
      throw JobError(3, ex.what());
    }
  }
  const std::string& ks = o.keyspace;
  auto cluster_text = [](const ClusterInfo& c) {
    return c.label + (c.cluster_name.empty() ? "" : " (cluster '" + c.cluster_name + "')");
  };
  for (const ClusterInfo* c : {&s.origin, &s.target})
    if (keyspace_tables(c->columns, ks).empty())
      throw JobError(2, "keyspace '" + ks + "' does not exist on " + cluster_text(*c) +
                            (o.tables.empty() ? "" : "") + " or has no table");
  std::vector<std::string> names =
      o.tables.empty() ? keyspace_tables(s.origin.columns, ks) : o.tables;
  for (const auto& name : names) {
    auto origin = table_schema(s.origin.columns, ks, name);
    if (!origin)
      throw JobError(2,
                     "table " + ks + "." + name + " does not exist on " + cluster_text(s.origin));
    auto target = table_schema(s.target.columns, ks, name);
    if (!target)
      throw JobError(2,
                     "table " + ks + "." + name + " does not exist on " + cluster_text(s.target));
    if (auto diff = schema_difference(*origin, *target))
      throw JobError(2,
                     "table " + ks + "." + name + " differs between origin and target: " + *diff);
    TableJob t{*origin, layout_of(*origin), statements_of(*origin)};
    s.tables.push_back(std::move(t));
  }
  int splits = o.splits;
  if (splits == 0) splits = std::max<int>(256, 4 * static_cast<int>(s.origin.ring.tokens().size()));
  s.ranges = split_ring(s.origin.ring, splits);
  s.started_us = now_us();
  return s;
}

namespace {

// Serves `registry` as Prometheus text on http://ADDRESS:PORT/metrics from `main`; null when
// `address` is "". Throws JobError if `address` has no port or cannot be bound.
std::unique_ptr<http::Server> serve_metrics(asio::io_context& main, const std::string& address,
                                            metrics::Registry& registry) {
  if (address.empty()) return nullptr;
  auto colon = address.rfind(':');
  if (colon == std::string::npos) throw JobError(2, "--metrics must be ADDRESS:PORT");
  std::unique_ptr<http::Server> server;
  try {
    server = std::make_unique<http::Server>(
        main, address.substr(0, colon), std::stoi(address.substr(colon + 1)),
        [&registry](const http::Request& request) {
          if (request.target == "/metrics")
            return http::Response{200, "text/plain; version=0.0.4; charset=utf-8",
                                  registry.render()};
          return http::Response{404, "text/plain; charset=utf-8", "not found\n"};
        });
  } catch (const std::exception& e) {
    throw JobError(2, "--metrics " + address + ": cannot listen: " + e.what());
  }
  server->start();
  spdlog::info("metrics on http://{}/metrics", address);
  return server;
}

// Progress on stderr, from the main thread: on a terminal a bar redrawn every second, otherwise
// a line every --progress-interval seconds; nothing with --progress none.
class Ticker {
 public:
  Ticker(asio::io_context& main, const Options& o,
         const std::function<ProgressSnapshot()>& snapshot)
      : timer_(main),
        tty_(o.progress == ProgressMode::kBar ||
             (o.progress == ProgressMode::kAuto && ::isatty(STDERR_FILENO))),
        show_(o.progress != ProgressMode::kNone),
        interval_(tty_ ? 1 : o.progress_interval_s),
        snapshot_(snapshot),
        started_(std::chrono::steady_clock::now()) {
    if (show_) arm();
  }
  void cancel() { timer_.cancel(); }
  // The last line, once the work is over.
  void finish() {
    if (!show_) return;
    std::fprintf(stderr, tty_ ? "\r%s\x1b[K\n" : "%s\n", line().c_str());
    std::fflush(stderr);
  }

 private:
  std::string line() {
    ProgressSnapshot snap = snapshot_();
    snap.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    return progress_line(snap, tty_);
  }
  void arm() {
    timer_.expires_after(interval_);
    timer_.async_wait([this](net::error_code ec) {
      if (ec) return;
      if (tty_) {
        std::fprintf(stderr, "\r%s\x1b[K", line().c_str());
      } else {
        std::fprintf(stderr, "%s\n", line().c_str());
      }
      std::fflush(stderr);
      arm();
    });
  }

  asio::steady_timer timer_;
  const bool tty_, show_;
  const std::chrono::seconds interval_;
  const std::function<ProgressSnapshot()>& snapshot_;
  const std::chrono::steady_clock::time_point started_;
};

// Waits for SIGINT/SIGTERM on `signals`: the first calls `on_signal` (and waits again), the
// second exits the process at once with code 130.
void watch_signals(asio::signal_set& signals, int& signalled,
                   const std::function<void()>& on_signal) {
  signals.async_wait([&signals, &signalled, &on_signal](net::error_code ec, int sig) {
    if (ec) return;
    if (++signalled > 1) {
      std::fprintf(stderr, "\nzdm-data: %s again: exiting now\n", strsignal(sig));
      std::_Exit(130);
    }
    std::fprintf(stderr,
                 "\nzdm-data: %s: finishing the token ranges in progress (again to exit now)\n",
                 strsignal(sig));
    on_signal();
    watch_signals(signals, signalled, on_signal);
  });
}

}  // namespace

void run_workers(const Options& o, metrics::Registry& registry,
                 const std::function<asio::awaitable<void>(asio::io_context&, int)>& body,
                 const std::function<ProgressSnapshot()>& snapshot,
                 const std::function<void()>& on_signal) {
  asio::io_context main;
  auto guard = asio::make_work_guard(main);
  std::unique_ptr<http::Server> server = serve_metrics(main, o.metrics, registry);
  Ticker ticker(main, o, snapshot);
  asio::signal_set signals(main, SIGINT, SIGTERM);
  int signalled = 0;
  watch_signals(signals, signalled, on_signal);
  std::atomic<int> running{o.threads};
  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i) {
    threads.emplace_back([&, i] {
      asio::io_context ioc(1);
      asio::co_spawn(ioc, body(ioc, i), [](std::exception_ptr e) { log_exception(e, "worker"); });
      ioc.run();
      if (--running == 0)  // the last thread done: the main thread's work ends
        asio::post(main, [&] {
          ticker.cancel();
          signals.cancel();
          if (server) server->stop();
          guard.reset();
          main.stop();
        });
    });
  }
  main.run();
  for (auto& t : threads) t.join();
  ticker.finish();
}

std::string table_names(const Setup& s) {
  std::string names;
  for (const auto& t : s.tables) names += (names.empty() ? "" : ", ") + t.schema.table;
  return names;
}

}  // namespace zdm::data
