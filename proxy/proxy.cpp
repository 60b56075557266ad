#include "proxy/proxy.h"

#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/resource.h>

#include <functional>

#include <nlohmann/json.hpp>
#include <thread>

#include "proxy/control_connection.h"
#include "proxy/http_server.h"
#include "proxy/metrics.h"
#include "proxy/net/tls.h"
#include "proxy/prepared_cache.h"
#include "proxy/session.h"

namespace zdm::proxy {

std::string readiness_json(const ReadinessInput& in, bool& ready) {
  nlohmann::ordered_json j;
  if (!in.started) {
    j["OriginStatus"] = nullptr;
    j["TargetStatus"] = nullptr;
    j["Status"] = "STARTUP";
    ready = false;
    return j.dump();
  }
  auto side = [&](const ReadinessInput::Side& s) {
    nlohmann::ordered_json o;
    o["Addr"] = s.addr;
    o["CurrentFailureCount"] = s.failures;
    o["FailureCountThreshold"] = in.threshold;
    o["Status"] = s.up ? "UP" : "DOWN";
    return o;
  };
  j["OriginStatus"] = side(in.origin);
  j["TargetStatus"] = side(in.target);
  ready = in.origin.up && in.target.up && !in.shutting_down;
  j["Status"] = in.shutting_down ? "SHUTDOWN" : (ready ? "UP" : "DOWN");
  return j.dump();
}

namespace {

struct Worker {
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
  std::vector<std::weak_ptr<ClientSession>> sessions;  // touched only on this worker's thread
  std::thread thread;
};

void log_exception(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{} failed: {}", what, ex.what());
  }
}

// TLS and timeouts of the hop to cluster `c`. Throws net::TlsError naming the key and file.
net::HopSettings hop_settings(const Config& config, Cluster c) {
  net::HopSettings hop;
  hop.verify_hostname = config.tls_verify_hostname(c);
  hop.connect_timeout = std::chrono::milliseconds(config.connection_timeout_ms(c));
  if (!config.tls_enabled(c)) return hop;
  const bool o = c == Cluster::kOrigin;
  const std::string p = o ? "origin" : "target";
  hop.tls = net::make_client_context(
      {o ? config.origin_tls_server_ca_path : config.target_tls_server_ca_path,
       o ? config.origin_tls_client_cert_path : config.target_tls_client_cert_path,
       o ? config.origin_tls_client_key_path : config.target_tls_client_key_path,
       p + "_tls_server_ca_path", p + "_tls_client_cert_path", p + "_tls_client_key_path"});
  return hop;
}

std::string tls_mode(const Config& config, Cluster c) {
  if (!config.tls_enabled(c)) return "none";
  bool mutual = !(c == Cluster::kOrigin ? config.origin_tls_client_cert_path
                                        : config.target_tls_client_cert_path)
                     .empty();
  return std::string(mutual ? "mutual" : "one-way") +
         (config.tls_verify_hostname(c) ? ", host names verified" : ", host names NOT verified");
}

}  // namespace

// Raises the soft limit of open files to the hard limit: a client connection needs up to four
// descriptors (client, origin, target, async).
void raise_fd_limit(const Config& config) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  const rlim_t before = rl.rlim_cur;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  const rlim_t needed = static_cast<rlim_t>(config.proxy_max_client_connections) * 4 + 64;
  if (rl.rlim_cur < needed)
    spdlog::warn(
        "Open files limit is {} (hard limit {}); proxy_max_client_connections {} needs "
        "about {}",
        rl.rlim_cur, rl.rlim_max, config.proxy_max_client_connections, needed);
  else if (before != rl.rlim_cur)
    spdlog::info("Raised the open files limit from {} to {}", before, rl.rlim_cur);
}

void check_tls_files(const Config& config) {
  hop_settings(config, Cluster::kOrigin);
  hop_settings(config, Cluster::kTarget);
  if (!config.proxy_tls_cert_path.empty())
    net::make_server_context(
        {config.proxy_tls_ca_path, config.proxy_tls_cert_path, config.proxy_tls_key_path,
         "proxy_tls_ca_path", "proxy_tls_cert_path", "proxy_tls_key_path"},
        config.proxy_tls_require_client_auth);
}

int run_proxy(const Config& config) {
  raise_fd_limit(config);
  net::HopSettings origin_hop, target_hop;
  std::shared_ptr<ssl::context> client_tls;
  try {
    origin_hop = hop_settings(config, Cluster::kOrigin);
    target_hop = hop_settings(config, Cluster::kTarget);
    if (!config.proxy_tls_cert_path.empty())
      client_tls = net::make_server_context(
          {config.proxy_tls_ca_path, config.proxy_tls_cert_path, config.proxy_tls_key_path,
           "proxy_tls_ca_path", "proxy_tls_cert_path", "proxy_tls_key_path"},
          config.proxy_tls_require_client_auth);
  } catch (const net::TlsError& e) {
    spdlog::critical("Invalid TLS configuration: {}", e.what());
    return 2;
  }
  spdlog::info("TLS to ORIGIN: {}; to TARGET: {}; from clients: {}",
               tls_mode(config, Cluster::kOrigin), tls_mode(config, Cluster::kTarget),
               !client_tls                            ? "none"
               : config.proxy_tls_require_client_auth ? "mutual (client certificates required)"
                                                      : "one-way");
  asio::io_context main_ioc{1};
  Registry registry;
  ProxyMetrics metrics(config, registry);
  PreparedCache prepared(static_cast<std::size_t>(config.proxy_prepared_cache_size));
  ControlConnection origin_cc(main_ioc, config, Cluster::kOrigin, origin_hop);
  ControlConnection target_cc(main_ioc, config, Cluster::kTarget, target_hop);

  VirtualTopology topology;
  topology.addresses = config.proxy_topology_addresses;
  if (topology.addresses.empty()) topology.addresses.push_back(config.own_topology_address());
  topology.index = config.proxy_topology_addresses.empty() ? 0 : config.proxy_topology_index;
  topology.num_tokens = config.proxy_topology_num_tokens;
  topology.port = config.proxy_listen_port;
  SharedState shared{config, metrics, prepared, origin_cc, target_cc, topology, client_tls};

  std::atomic<bool> started{false};
  std::atomic<bool> shutting_down{false};

  auto readiness = [&](bool& ready) {
    ReadinessInput in;
    in.started = started;
    in.shutting_down = shutting_down;
    in.threshold = config.heartbeat_failure_threshold;
    auto side = [&](ControlConnection& cc) {
      ReadinessInput::Side s;
      s.addr = cc.address();
      s.failures = cc.failure_count();
      s.up = cc.snapshot() != nullptr && cc.failure_count() < config.heartbeat_failure_threshold;
      return s;
    };
    in.origin = side(origin_cc);
    in.target = side(target_cc);
    return readiness_json(in, ready);
  };

  auto handler = [&](const std::string& method, const std::string& target) -> HttpResponse {
    if (target == "/health/liveness") return {200, "text/plain; charset=utf-8", "OK"};
    if (target == "/health/readiness") {
      if (method != "GET") return {404, "text/plain; charset=utf-8", "404 page not found\n"};
      bool ready = false;
      std::string body = readiness(ready);
      return {ready ? 200u : 503u, "application/json", body};
    }
    if (target == "/metrics") {
      if (!config.metrics_enabled)
        return {404, "text/plain; charset=utf-8", "404 page not found\n"};
      if (!started)
        return {503, "text/plain; charset=utf-8", "Proxy metrics haven't been initialized yet."};
      bool ready = false;
      readiness(ready);
      metrics.ready().set(ready ? 1 : 0);
      return {200, "text/plain; version=0.0.4; charset=utf-8", registry.render()};
    }
    return {404, "text/plain; charset=utf-8", "404 page not found\n"};
  };

  std::unique_ptr<HttpServer> http;
  try {
    http = std::make_unique<HttpServer>(main_ioc, config.metrics_address, config.metrics_port,
                                        handler);
  } catch (const std::exception& e) {
    spdlog::error("Cannot listen for HTTP on {}:{}: {}", config.metrics_address,
                  config.metrics_port, e.what());
    return 1;
  }
  spdlog::info("Starting http server (metrics and health checks) on {}:{}", config.metrics_address,
               config.metrics_port);
  http->start();

  asio::co_spawn(main_ioc, origin_cc.run(),
                 [](std::exception_ptr e) { log_exception(e, "ORIGIN control connection"); });
  asio::co_spawn(main_ioc, target_cc.run(),
                 [](std::exception_ptr e) { log_exception(e, "TARGET control connection"); });

  int nworkers = config.proxy_worker_threads > 0
                     ? config.proxy_worker_threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < nworkers; ++i) workers.push_back(std::make_unique<Worker>());
  tcp::acceptor acceptor(main_ioc);
  int exit_code = 0;

  auto accept_loop = [&]() -> awaitable<void> {
    std::size_t next = 0;
    asio::steady_timer backoff(main_ioc);
    auto last_log = std::chrono::steady_clock::time_point{};
    uint64_t failed_since_log = 0;
    for (;;) {
      Worker& w = *workers[next++ % workers.size()];
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(w.ioc, nothrow(ec));
      if (ec) {
        if (!acceptor.is_open()) co_return;
        // Out of file descriptors (or another resource): back off instead of spinning, and say
        // so once per interval, not once per attempt.
        ++failed_since_log;
        auto now = std::chrono::steady_clock::now();
        if (now - last_log > std::chrono::seconds(10)) {
          spdlog::warn("Accept failed: {} ({} times in the last interval); backing off 100 ms",
                       ec.message(), failed_since_log);
          last_log = now;
          failed_since_log = 0;
        }
        backoff.expires_after(std::chrono::milliseconds(100));
        co_await backoff.async_wait(nothrow(ec));
        continue;
      }
      if (shared.sessions.load() >= config.proxy_max_client_connections) {
        spdlog::warn("Refusing client connection: proxy_max_client_connections ({}) reached",
                     config.proxy_max_client_connections);
        socket.close(ec);
        continue;
      }
      asio::post(w.ioc, [&w, &shared, socket = std::move(socket)]() mutable {
        auto session = std::make_shared<ClientSession>(w.ioc, std::move(socket), shared);
        std::erase_if(w.sessions, [](const auto& s) { return s.expired(); });
        w.sessions.push_back(session);
        // The function object (and the shared_ptr it holds) lives as long as the coroutine.
        asio::co_spawn(
            w.ioc, [session]() { return session->run(); },
            [](std::exception_ptr e) { log_exception(e, "client session"); });
      });
    }
  };

  // Start listening once both control connections are up (ZDM: RunWithRetries).
  auto startup = [&]() -> awaitable<void> {
    asio::steady_timer t(main_ioc);
    while (!(origin_cc.snapshot() && target_cc.snapshot())) {
      if (shutting_down) co_return;
      boost::system::error_code ec;
      t.expires_after(std::chrono::milliseconds(100));
      co_await t.async_wait(nothrow(ec));
    }
    if (auto snap = origin_cc.snapshot()) {
      std::string cluster_name_value;
      for (std::size_t i = 0; i < snap->local.metadata.columns.size(); ++i)
        if (snap->local.metadata.columns[i].name == "cluster_name" && snap->local.rows[0][i])
          cluster_name_value = cql::to_string(*snap->local.rows[0][i]);
      spdlog::info("Initialized origin control connection. Cluster Name: {}", cluster_name_value);
    }
    try {
      tcp::resolver resolver(main_ioc);
      auto ep =
          resolver.resolve(config.proxy_listen_address, std::to_string(config.proxy_listen_port))
              .begin()
              ->endpoint();
      acceptor.open(ep.protocol());
      acceptor.set_option(tcp::acceptor::reuse_address(true));
      acceptor.bind(ep);
      acceptor.listen(asio::socket_base::max_listen_connections);
    } catch (const std::exception& e) {
      spdlog::error("Cannot listen on {}:{}: {}", config.proxy_listen_address,
                    config.proxy_listen_port, e.what());
      exit_code = 1;
      main_ioc.stop();
      co_return;
    }
    for (auto& w : workers) w->thread = std::thread([&w] { w->ioc.run(); });
    started = true;
    spdlog::info("Proxy connected and ready to accept queries on {}:{}",
                 config.proxy_listen_address, config.proxy_listen_port);
    spdlog::info("Proxy started. Waiting for SIGINT/SIGTERM to shutdown.");
    co_await accept_loop();
  };
  asio::co_spawn(main_ioc, startup(),
                 [](std::exception_ptr e) { log_exception(e, "proxy listener"); });

  // Memory of clients that left goes back to the system (glibc keeps freed memory otherwise).
  asio::steady_timer trim_timer(main_ioc);
  std::function<void(uint64_t)> trim = [&](uint64_t ended_before) {
    trim_timer.expires_after(std::chrono::seconds(5));
    trim_timer.async_wait([&, ended_before](boost::system::error_code ec) {
      if (ec) return;
      uint64_t ended = shared.sessions_ended.load();
      if (ended != ended_before) malloc_trim(0);
      trim(ended);
    });
  };
  trim(0);

  // SIGINT/SIGTERM: stop accepting, drain every session, then stop (STYLE rule 8).
  asio::signal_set signals(main_ioc, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info(
        "Received signal {}, shutting down: no new connections, answering requests in flight", sig);
    shutting_down = true;
    shared.draining = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (auto& w : workers) {
      asio::post(w->ioc, [&w] {
        for (auto& weak : w->sessions)
          if (auto s = weak.lock()) s->drain();
      });
    }
    asio::co_spawn(
        main_ioc,
        [&]() -> awaitable<void> {
          asio::steady_timer t(main_ioc);
          auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(config.proxy_request_timeout_ms + 2000);
          while (shared.sessions.load() > 0 && std::chrono::steady_clock::now() < deadline) {
            boost::system::error_code e;
            t.expires_after(std::chrono::milliseconds(20));
            co_await t.async_wait(nothrow(e));
          }
          if (shared.sessions.load() > 0)
            spdlog::warn("{} client connections still open at the shutdown deadline; closing them",
                         shared.sessions.load());
          origin_cc.stop();
          target_cc.stop();
          trim_timer.cancel();
          http->stop();
          main_ioc.stop();
        },
        asio::detached);
  });

  main_ioc.run();
  for (auto& w : workers) {
    w->guard.reset();
    w->ioc.stop();
    if (w->thread.joinable()) w->thread.join();
  }
  spdlog::info("Proxy stopped");
  return exit_code;
}

}  // namespace zdm::proxy
