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

void run_workers(const Options& o, metrics::Registry& registry,
                 const std::function<asio::awaitable<void>(asio::io_context&, int)>& body,
                 const std::function<ProgressSnapshot()>& snapshot,
                 const std::function<void()>& on_signal) {
  asio::io_context main;
  auto guard = asio::make_work_guard(main);
  std::unique_ptr<http::Server> server;
  if (!o.metrics.empty()) {
    auto colon = o.metrics.rfind(':');
    if (colon == std::string::npos) throw JobError(2, "--metrics must be ADDRESS:PORT");
    try {
      server = std::make_unique<http::Server>(
          main, o.metrics.substr(0, colon), std::stoi(o.metrics.substr(colon + 1)),
          [&registry](const http::Request& request) {
            if (request.target == "/metrics")
              return http::Response{200, "text/plain; version=0.0.4; charset=utf-8",
                                         registry.render()};
            return http::Response{404, "text/plain; charset=utf-8", "not found\n"};
          });
    } catch (const std::exception& e) {
      throw JobError(2, "--metrics " + o.metrics + ": cannot listen: " + e.what());
    }
    server->start();
    spdlog::info("metrics on http://{}/metrics", o.metrics);
  }
  bool tty = o.progress == ProgressMode::kBar ||
             (o.progress == ProgressMode::kAuto && ::isatty(STDERR_FILENO));
  const bool show = o.progress != ProgressMode::kNone;
  const auto started = std::chrono::steady_clock::now();
  asio::steady_timer tick(main);
  std::function<void()> arm = [&]() {
    tick.expires_after(tty ? std::chrono::seconds(1) : std::chrono::seconds(o.progress_interval_s));
    tick.async_wait([&](net::error_code ec) {
      if (ec) return;
      ProgressSnapshot snap = snapshot();
      snap.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::string line = progress_line(snap, tty);
      if (tty) {
        std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
      } else {
        std::fprintf(stderr, "%s\n", line.c_str());
      }
      std::fflush(stderr);
      arm();
    });
  };
  if (show) arm();
  asio::signal_set signals(main, SIGINT, SIGTERM);
  int signalled = 0;
  std::function<void()> wait_signal = [&]() {
    signals.async_wait([&](net::error_code ec, int sig) {
      if (ec) return;
      if (++signalled > 1) {
        std::fprintf(stderr, "\nzdm-data: %s again: exiting now\n", strsignal(sig));
        std::_Exit(130);
      }
      std::fprintf(stderr,
                   "\nzdm-data: %s: finishing the token ranges in progress (again to exit now)\n",
                   strsignal(sig));
      on_signal();
      wait_signal();
    });
  };
  wait_signal();
  std::atomic<int> running{o.threads};
  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i) {
    threads.emplace_back([&, i] {
      asio::io_context ioc(1);
      asio::co_spawn(ioc, body(ioc, i), [](std::exception_ptr e) { log_exception(e, "worker"); });
      ioc.run();
      if (--running == 0)
        asio::post(main, [&] {
          tick.cancel();
          signals.cancel();
          if (server) server->stop();
          guard.reset();
          main.stop();
        });
    });
  }
  main.run();
  for (auto& t : threads) t.join();
  if (show) {
    ProgressSnapshot snap = snapshot();
    snap.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, tty ? "\r%s\x1b[K\n" : "%s\n", progress_line(snap, tty).c_str());
    std::fflush(stderr);
  }
}

std::string table_names(const Setup& s) {
  std::string names;
  for (const auto& t : s.tables) names += (names.empty() ? "" : ", ") + t.schema.table;
  return names;
}

}  // namespace zdm::data
