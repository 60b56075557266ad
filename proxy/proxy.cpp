#include "proxy/proxy.h"

#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <functional>
#include <mutex>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/http/server.h"
#include "common/net/tls.h"
#include "proxy/control_connection.h"
#include "proxy/cpus.h"
#include "proxy/memory_guard.h"
#include "proxy/metrics.h"
#include "proxy/prepared_cache.h"
#include "proxy/session.h"
#include "proxy/topology.h"

namespace zdm::proxy {

std::string readiness_json(const ReadinessInput& in, bool& ready) {
  nlohmann::ordered_json j;
  // Which cluster keeps the proxy from being ready, and why.
  std::string reason;
  for (const auto* s : {&in.origin, &in.target})
    if (!s->up && !s->reason.empty())
      reason += (reason.empty() ? "" : "; ") +
                std::string(cluster_name(s == &in.origin ? Cluster::kOrigin : Cluster::kTarget)) +
                " " + s->reason;
  if (!in.started) {
    j["OriginStatus"] = nullptr;
    j["TargetStatus"] = nullptr;
    j["Status"] = "STARTUP";
    if (!reason.empty()) j["Reason"] = reason;
    ready = false;
    return j.dump();
  }
  auto side = [&](const ReadinessInput::Side& s) {
    nlohmann::ordered_json o;
    o["Addr"] = s.addr;
    o["CurrentFailureCount"] = s.failures;
    o["FailureCountThreshold"] = in.threshold;
    o["Status"] = s.up ? "UP" : "DOWN";
    if (!s.up && !s.reason.empty()) o["Reason"] = s.reason;
    return o;
  };
  j["OriginStatus"] = side(in.origin);
  j["TargetStatus"] = side(in.target);
  ready = in.origin.up && in.target.up && !in.shutting_down && !in.draining;
  j["Status"] = in.shutting_down ? "SHUTDOWN" : in.draining ? "DRAINING" : (ready ? "UP" : "DOWN");
  if (!reason.empty()) j["Reason"] = reason;
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
// descriptors (client, origin, target, async), established or still in its handshake.
void raise_fd_limit(const Config& config) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  const rlim_t before = rl.rlim_cur;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  const rlim_t needed = static_cast<rlim_t>(config.proxy_max_client_connections +
                                            config.max_handshaking_connections()) *
                            4 +
                        64;
  if (rl.rlim_cur < needed)
    spdlog::warn(
        "Open files limit is {} (hard limit {}); proxy_max_client_connections {} and "
        "proxy_max_handshaking_connections {} need about {}",
        rl.rlim_cur, rl.rlim_max, config.proxy_max_client_connections,
        config.max_handshaking_connections(), needed);
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

namespace {

/// The running program: HTTP endpoints, control connections, listener, workers, signals.
class Program {
 public:
  Program(const Config& config, net::HopSettings origin_hop, net::HopSettings target_hop,
          std::shared_ptr<ssl::context> client_tls)
      : config_(config),
        metrics_(config, registry_),
        prepared_(static_cast<std::size_t>(config.proxy_prepared_cache_size)),
        origin_cc_(main_ioc_, config, Cluster::kOrigin, std::move(origin_hop)),
        target_cc_(main_ioc_, config, Cluster::kTarget, std::move(target_hop)),
        shared_(config, metrics_, prepared_, origin_cc_, target_cc_, make_topology(config),
                std::move(client_tls)),
        acceptor_(main_ioc_),
        trim_timer_(main_ioc_),
        signals_(main_ioc_, SIGINT, SIGTERM) {}

  int run();

 private:
  static VirtualTopology make_topology(const Config& config);
  std::string readiness(bool& ready) const;
  http::Response handle_http(const http::Request& req);
  http::Response handle_admin(const http::Request& req);
  void drain_for_handover();
  void set_leaving(std::vector<std::string> leaving);
  awaitable<void> startup();
  awaitable<void> accept_loop();
  void trim_memory(uint64_t ended_before);
  /// The process-wide memory ceiling (memory_guard.h): checks the RSS every 50 ms and closes
  /// the heaviest client connections above it.
  awaitable<void> guard_memory();
  struct Held {
    std::size_t bytes;
    std::weak_ptr<ClientSession> session;
    Worker* worker;
  };
  /// What every client connection holding at least kMinShedBytes holds, asked of each worker
  /// on its own thread (at most 1 s).
  awaitable<std::vector<Held>> gather_held();
  void on_signal(int sig);
  /// Runs `f(session)` on every live session, on its worker's thread.
  void for_each_session(std::function<void(ClientSession&)> f);

  const Config& config_;
  asio::io_context main_ioc_{1};
  Registry registry_;
  ProxyMetrics metrics_;
  PreparedCache prepared_;
  ControlConnection origin_cc_;
  ControlConnection target_cc_;
  SharedState shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  tcp::acceptor acceptor_;
  std::unique_ptr<http::Server> http_;
  asio::steady_timer trim_timer_;
  asio::signal_set signals_;
  std::atomic<bool> started_{false};
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> handing_over_{false};  // POST /admin/drain: a rolling update takes it down
  std::mutex admin_mu_;
  int exit_code_ = 0;
};

VirtualTopology Program::make_topology(const Config& config) {
  VirtualTopology t;
  t.addresses = config.proxy_topology_addresses;
  if (t.addresses.empty()) t.addresses.push_back(config.own_topology_address());
  t.index = config.proxy_topology_addresses.empty() ? 0 : config.proxy_topology_index;
  t.num_tokens = config.proxy_topology_num_tokens;
  t.port = config.proxy_listen_port;
  return t;
}

std::string Program::readiness(bool& ready) const {
  ReadinessInput in;
  in.started = started_;
  in.shutting_down = shutting_down_;
  in.draining = handing_over_;
  in.threshold = config_.heartbeat_failure_threshold;
  // Evaluated at each request: the control connection's state and what the request
  // connections showed within the last seconds (a data path that stopped answering).
  auto side = [&](const ControlConnection& cc) {
    ReadinessInput::Side s;
    s.addr = cc.address();
    s.failures = cc.failure_count();
    const bool connected =
        cc.snapshot() != nullptr && s.failures < config_.heartbeat_failure_threshold;
    const std::string stalled = connected ? cc.stalled() : "";
    s.up = connected && stalled.empty();
    if (!connected && cc.attempted()) {
      const std::string why = cc.last_failure();
      s.reason = "DOWN: " + (why.empty() ? std::string("not connected") : why);
    } else if (!stalled.empty()) {
      s.reason = "STALLED: " + stalled;
    }
    return s;
  };
  in.origin = side(origin_cc_);
  in.target = side(target_cc_);
  return readiness_json(in, ready);
}

http::Response Program::handle_http(const http::Request& req) {
  const http::Response not_found{404, "text/plain; charset=utf-8", "404 page not found\n"};
  const std::string path = req.target.substr(0, req.target.find('?'));
  if (path == "/health/liveness") return {200, "text/plain; charset=utf-8", "OK"};
  if (path == "/health/readiness") {
    if (req.method != "GET") return not_found;
    bool ready = false;
    std::string body = readiness(ready);
    return {ready ? 200u : 503u, "application/json", body};
  }
  if (path == "/metrics") {
    if (!config_.metrics_enabled) return not_found;
    if (!started_)
      return {503, "text/plain; charset=utf-8", "Proxy metrics haven't been initialized yet."};
    bool ready = false;
    readiness(ready);
    metrics_.ready().set(ready ? 1 : 0);
    shared_.target.update_gauges();
    return {200, "text/plain; version=0.0.4; charset=utf-8", registry_.render()};
  }
  if (path.rfind("/admin/", 0) == 0 || path.rfind("/api/v1/", 0) == 0) return handle_admin(req);
  return not_found;
}

// The hand-over of a rolling update (docs/rolling-updates.md), for zdm-deploy:
//   POST /admin/drain            this proxy is about to stop: readiness 503 ("DRAINING"), no new
//                                client connections, drivers' control connections closed once
//                                their requests are answered (they reconnect to other proxies)
//   POST /admin/peers            body {"leaving": ["10.0.0.2"]}: those proxies are left out of
//                                system.peers and drivers registered for events are told
//                                REMOVED_NODE/DOWN (and NEW_NODE/UP when they come back)
//   GET  /admin/state            {"draining": bool, "leaving": [...], "client_connections": n}
// The runtime target switch (docs/target-protection.md; the paths of datastax/zdm-proxy PR #166):
//   GET  /api/v1/target          {"enabled", "primary_cluster", "target_failure_mode", "isolated",
//                                "journal": {"dir", "bytes", "unsettled", ...}}
//   POST /api/v1/target/disable  writes go to origin only and are journaled; optional body
//   POST /api/v1/target/enable   {"by": "who"} for the WARN log line; 409 {"error"} if refused
// Each needs "Authorization: Bearer <proxy_admin_token>"; without that key they are off (404).
http::Response Program::handle_admin(const http::Request& req) {
  const http::Response not_found{404, "text/plain; charset=utf-8", "404 page not found\n"};
  if (config_.proxy_admin_token.empty()) return not_found;
  if (req.authorization != "Bearer " + config_.proxy_admin_token)
    return {401, "text/plain; charset=utf-8", "401 unauthorized: proxy_admin_token expected\n"};
  const std::string path = req.target.substr(0, req.target.find('?'));
  std::lock_guard lock(admin_mu_);
  if (path == "/admin/state" && req.method == "GET") {
    nlohmann::json j;
    j["draining"] = handing_over_.load();
    j["leaving"] = shared_.topology()->leaving;
    j["client_connections"] = shared_.sessions.load();
    return {200, "application/json", j.dump()};
  }
  if (path == "/api/v1/target" && req.method == "GET")
    return {200, "application/json", shared_.target.state_json()};
  if ((path == "/api/v1/target/disable" || path == "/api/v1/target/enable") &&
      req.method == "POST") {
    std::string by;
    try {
      if (!req.body.empty()) by = nlohmann::json::parse(req.body).value("by", "");
    } catch (const std::exception& e) {
      return {400, "text/plain; charset=utf-8",
              std::string("expected an empty body or {\"by\": \"who\"}: ") + e.what() + "\n"};
    }
    const bool on = path == "/api/v1/target/enable";
    if (auto refused = shared_.target.set_enabled(on, by)) {
      nlohmann::json j;
      j["error"] = *refused;
      return {409, "application/json", j.dump()};
    }
    return {200, "application/json", shared_.target.state_json()};
  }
  if (path == "/admin/drain" && req.method == "POST") {
    drain_for_handover();
    return {200, "application/json", R"({"draining":true})"};
  }
  if (path == "/admin/peers" && req.method == "POST") {
    std::vector<std::string> leaving;
    try {
      auto j = nlohmann::json::parse(req.body);
      for (const auto& a : j.at("leaving")) leaving.push_back(a.get<std::string>());
    } catch (const std::exception& e) {
      return {400, "text/plain; charset=utf-8",
              std::string("expected {\"leaving\": [\"address\", ...]}: ") + e.what() + "\n"};
    }
    const auto& all = shared_.topology()->addresses;
    for (const auto& a : leaving)
      if (std::find(all.begin(), all.end(), a) == all.end())
        return {400, "text/plain; charset=utf-8",
                "'" + a + "' is not in proxy_topology_addresses\n"};
    set_leaving(std::move(leaving));
    return {200, "application/json", R"({"ok":true})"};
  }
  return not_found;
}

void Program::drain_for_handover() {
  if (handing_over_.exchange(true)) return;
  spdlog::info(
      "Handing over: not ready, no new client connections; drivers' control "
      "connections closed once answered");
  asio::post(main_ioc_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  for_each_session([](ClientSession& s) {
    if (s.watches_topology()) s.drain();
  });
}

void Program::set_leaving(std::vector<std::string> leaving) {
  auto before = shared_.topology();
  auto next = std::make_shared<VirtualTopology>(*before);
  next->leaving = std::move(leaving);
  shared_.set_topology(next);
  // Events for what changed, to every driver registered for them.
  std::vector<cql::EventMsg> events;
  auto event = [&](const char* type, const char* change, const std::string& ip) {
    cql::EventMsg e;
    e.type = type;
    e.change = change;
    e.address = cql::Inet{inet_bytes(ip), next->port};
    events.push_back(e);
  };
  auto has = [](const std::vector<std::string>& v, const std::string& a) {
    return std::find(v.begin(), v.end(), a) != v.end();
  };
  for (const auto& a : next->leaving)
    if (!has(before->leaving, a)) {
      spdlog::info("Proxy {} is leaving: telling drivers it is removed", a);
      event("STATUS_CHANGE", "DOWN", a);
      event("TOPOLOGY_CHANGE", "REMOVED_NODE", a);
    }
  for (const auto& a : before->leaving)
    if (!has(next->leaving, a)) {
      spdlog::info("Proxy {} is back: telling drivers it is a node again", a);
      event("TOPOLOGY_CHANGE", "NEW_NODE", a);
      event("STATUS_CHANGE", "UP", a);
    }
  if (events.empty()) return;
  for_each_session([events](ClientSession& s) {
    for (const auto& e : events) s.push_event(e);
  });
}

void Program::for_each_session(std::function<void(ClientSession&)> f) {
  for (auto& w : workers_) {
    asio::post(w->ioc, [&w, f] {
      for (auto& weak : w->sessions)
        if (auto s = weak.lock()) f(*s);
    });
  }
}

awaitable<void> Program::accept_loop() {
  std::size_t next = 0;
  asio::steady_timer backoff(main_ioc_);
  auto last_log = std::chrono::steady_clock::time_point{};
  uint64_t failed_since_log = 0;
  for (;;) {
    Worker& w = *workers_[next++ % workers_.size()];
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(w.ioc, nothrow(ec));
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      // Out of file descriptors (or another resource): back off instead of spinning, and say so
      // once per interval, not once per attempt.
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
    // Only connections that completed their handshake count here: those still in theirs have
    // their own budget, whose oldest member makes room for a new one (handshake_budget.h).
    if (shared_.established.load() >= config_.proxy_max_client_connections) {
      spdlog::warn("Refusing client connection: proxy_max_client_connections ({}) reached",
                   config_.proxy_max_client_connections);
      socket.close(ec);
      continue;
    }
    asio::post(w.ioc, [&w, this, socket = std::move(socket)]() mutable {
      auto session = std::make_shared<ClientSession>(w.ioc, std::move(socket), shared_);
      std::erase_if(w.sessions, [](const auto& s) { return s.expired(); });
      w.sessions.push_back(session);
      // The function object (and the shared_ptr it holds) lives as long as the coroutine.
      asio::co_spawn(
          w.ioc, [session]() { return session->run(); },
          [](std::exception_ptr e) { log_exception(e, "client session"); });
    });
  }
}

// Listens once both control connections are up (ZDM: RunWithRetries).
awaitable<void> Program::startup() {
  asio::steady_timer t(main_ioc_);
  while (!(origin_cc_.snapshot() && target_cc_.snapshot())) {
    if (shutting_down_) co_return;
    boost::system::error_code ec;
    t.expires_after(std::chrono::milliseconds(100));
    co_await t.async_wait(nothrow(ec));
  }
  if (auto snap = origin_cc_.snapshot()) {
    std::string cluster_name_value;
    for (std::size_t i = 0; i < snap->local.metadata.columns.size(); ++i)
      if (snap->local.metadata.columns[i].name == "cluster_name" && snap->local.rows[0][i])
        cluster_name_value = cql::to_string(*snap->local.rows[0][i]);
    spdlog::info("Initialized origin control connection. Cluster Name: {}", cluster_name_value);
  }
  try {
    tcp::resolver resolver(main_ioc_);
    auto ep =
        resolver.resolve(config_.proxy_listen_address, std::to_string(config_.proxy_listen_port))
            .begin()
            ->endpoint();
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    spdlog::error("Cannot listen on {}:{}: {}", config_.proxy_listen_address,
                  config_.proxy_listen_port, e.what());
    exit_code_ = 1;
    main_ioc_.stop();
    co_return;
  }
  for (auto& w : workers_) w->thread = std::thread([&w] { w->ioc.run(); });
  asio::co_spawn(main_ioc_, guard_memory(),
                 [](std::exception_ptr e) { log_exception(e, "memory guard"); });
  started_ = true;
  spdlog::info("Proxy connected and ready to accept queries on {}:{}", config_.proxy_listen_address,
               config_.proxy_listen_port);
  spdlog::info("Proxy started. Waiting for SIGINT/SIGTERM to shutdown.");
  co_await accept_loop();
}

// Memory of clients that left goes back to the system (glibc keeps freed memory otherwise).
void Program::trim_memory(uint64_t ended_before) {
  trim_timer_.expires_after(std::chrono::seconds(5));
  trim_timer_.async_wait([this, ended_before](boost::system::error_code ec) {
    if (ec) return;
    uint64_t ended = shared_.sessions_ended.load();
    if (ended != ended_before) malloc_trim(0);
    trim_memory(ended);
  });
}

awaitable<std::vector<Program::Held>> Program::gather_held() {
  struct Gather {
    explicit Gather(asio::io_context& ioc) : done(ioc) {}
    std::mutex mu;
    std::vector<Held> held;
    std::size_t left = 0;
    asio::steady_timer done;
  };
  auto g = std::make_shared<Gather>(main_ioc_);
  g->left = workers_.size();
  g->done.expires_after(std::chrono::seconds(1));
  for (auto& w : workers_) {
    asio::post(w->ioc, [this, g, w = w.get()] {
      std::vector<Held> mine;
      for (auto& weak : w->sessions)
        if (auto s = weak.lock())
          if (std::size_t b = s->held_bytes(); b >= kMinShedBytes) mine.push_back({b, weak, w});
      std::lock_guard lock(g->mu);
      g->held.insert(g->held.end(), mine.begin(), mine.end());
      if (--g->left == 0) asio::post(main_ioc_, [g] { g->done.cancel(); });
    });
  }
  boost::system::error_code ec;
  co_await g->done.async_wait(nothrow(ec));
  std::lock_guard lock(g->mu);
  co_return g->held;
}

awaitable<void> Program::guard_memory() {
  const MemoryCeiling ceiling = memory_ceiling(config_.proxy_max_memory_bytes);
  spdlog::info(
      "Memory ceiling {} bytes ({}): above {} bytes of resident memory the client connections "
      "holding the most buffered bytes are closed",
      ceiling.bytes, ceiling.source, shed_above(ceiling.bytes));
  asio::steady_timer t(main_ioc_);
  using Clock = std::chrono::steady_clock;
  auto last_trim = Clock::time_point{};
  auto last_log = Clock::time_point{};
  // Connections told to close and not gone yet: what they hold is about to be freed, so it is
  // not shed twice (checks go on meanwhile: memory can grow while they close).
  struct Closing {
    std::weak_ptr<ClientSession> session;
    std::size_t bytes;
    Clock::time_point since;
  };
  std::vector<Closing> closing;
  while (!shutting_down_) {
    boost::system::error_code ec;
    t.expires_after(kMemoryCheckInterval);
    co_await t.async_wait(nothrow(ec));
    if (ec || shutting_down_) co_return;
    const auto now = Clock::now();
    const std::size_t was_closing = closing.size();
    std::erase_if(closing, [&](const Closing& c) {
      // One that has not ended within a few checks is not counted on any more: memory may
      // grow meanwhile, and staying under the ceiling matters more than closing one too many.
      return c.session.expired() || now - c.since > 5 * kMemoryCheckInterval;
    });
    // Memory freed but kept by malloc counts in the RSS: given back when victims are gone, and
    // otherwise at most once a second while over the threshold (a few milliseconds).
    const bool freed = closing.size() < was_closing;
    auto rss = resident_bytes();
    if (!rss) {
      spdlog::warn("Cannot read /proc/self/statm: the memory ceiling is not enforced");
      co_return;
    }
    if (*rss <= shed_above(ceiling.bytes) && !freed) continue;
    if (freed || now - last_trim > std::chrono::seconds(1)) {
      malloc_trim(0);
      last_trim = now;
      rss = resident_bytes();
      if (!rss || *rss <= shed_above(ceiling.bytes)) continue;
    }
    std::size_t excess = *rss - shed_to(ceiling.bytes);
    for (const auto& c : closing) excess -= std::min(excess, c.bytes);
    if (excess == 0) continue;
    std::vector<Held> held = co_await gather_held();  // closed ones hold nothing: not in it
    std::erase_if(held, [&](const Held& h) {          // told to close, not closed yet: not twice
      return std::any_of(closing.begin(), closing.end(), [&](const Closing& c) {
        return !c.session.owner_before(h.session) && !h.session.owner_before(c.session);
      });
    });
    std::vector<std::size_t> sizes;
    sizes.reserve(held.size());
    for (const auto& h : held) sizes.push_back(h.bytes);
    const auto victims = choose_victims(sizes, excess);
    if (victims.empty()) {
      if (closing.empty() && now - last_log > std::chrono::minutes(1)) {
        spdlog::warn(
            "Resident memory {} bytes is over {} % of the ceiling {} bytes, and no client "
            "connection holds {} bytes or more of buffers to close",
            *rss, kShedAbovePercent, ceiling.bytes, kMinShedBytes);
        last_log = now;
      }
      continue;
    }
    std::size_t total = 0;
    for (std::size_t i : victims) total += held[i].bytes;
    spdlog::warn(
        "Resident memory {} bytes is over {} % of the ceiling {} bytes: closing the {} client "
        "connections holding the most buffered bytes ({} bytes together)",
        *rss, kShedAbovePercent, ceiling.bytes, victims.size(), total);
    for (std::size_t i : victims) {
      asio::post(held[i].worker->ioc, [weak = held[i].session, r = *rss, c = ceiling.bytes] {
        if (auto s = weak.lock()) s->shed_for_memory(r, c);
      });
      closing.push_back({held[i].session, held[i].bytes, now});
    }
  }
}

// SIGINT/SIGTERM: stop accepting, drain every session, then stop.
void Program::on_signal(int sig) {
  spdlog::info(
      "Received signal {}, shutting down: no new connections, answering requests in flight", sig);
  shutting_down_ = true;
  shared_.draining = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  for_each_session([](ClientSession& s) { s.drain(); });
  asio::co_spawn(
      main_ioc_,
      [this]() -> awaitable<void> {
        asio::steady_timer t(main_ioc_);
        auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(config_.proxy_request_timeout_ms + 2000);
        while (shared_.sessions.load() > 0 && std::chrono::steady_clock::now() < deadline) {
          boost::system::error_code e;
          t.expires_after(std::chrono::milliseconds(20));
          co_await t.async_wait(nothrow(e));
        }
        if (shared_.sessions.load() > 0)
          spdlog::warn("{} client connections still open at the shutdown deadline; closing them",
                       shared_.sessions.load());
        origin_cc_.stop();
        target_cc_.stop();
        trim_timer_.cancel();
        http_->stop();
        main_ioc_.stop();
      },
      asio::detached);
}

int Program::run() {
  try {
    http_ =
        std::make_unique<http::Server>(main_ioc_, config_.metrics_address, config_.metrics_port,
                                       [this](const http::Request& r) { return handle_http(r); });
  } catch (const std::exception& e) {
    spdlog::error("Cannot listen for HTTP on {}:{}: {}", config_.metrics_address,
                  config_.metrics_port, e.what());
    return 1;
  }
  spdlog::info("Starting http server (metrics and health checks) on {}:{}", config_.metrics_address,
               config_.metrics_port);
  http_->start();
  asio::co_spawn(main_ioc_, origin_cc_.run(),
                 [](std::exception_ptr e) { log_exception(e, "ORIGIN control connection"); });
  asio::co_spawn(main_ioc_, target_cc_.run(),
                 [](std::exception_ptr e) { log_exception(e, "TARGET control connection"); });
  // 0: one worker per CPU the process may use (its affinity mask and cgroup quota), not per
  // core of the machine: workers beyond that only preempt one another.
  int nworkers = config_.proxy_worker_threads > 0 ? config_.proxy_worker_threads : usable_cpus();
  spdlog::info("Starting {} worker thread(s){}", nworkers,
               config_.proxy_worker_threads > 0 ? "" : " (the CPUs this process may use)");
  for (int i = 0; i < nworkers; ++i) workers_.push_back(std::make_unique<Worker>());
  asio::co_spawn(main_ioc_, startup(),
                 [](std::exception_ptr e) { log_exception(e, "proxy listener"); });
  trim_memory(0);
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (!ec) on_signal(sig);
  });
  main_ioc_.run();
  for (auto& w : workers_) {
    w->guard.reset();
    w->ioc.stop();
    if (w->thread.joinable()) w->thread.join();
  }
  spdlog::info("Proxy stopped");
  return exit_code_;
}

}  // namespace

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
  Program program(config, std::move(origin_hop), std::move(target_hop), std::move(client_tls));
  return program.run();
}

}  // namespace zdm::proxy
