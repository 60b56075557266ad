#include "proxy/control_connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <regex>

#include "common/cql/messages.h"
#include "proxy/connector.h"

namespace zdm::proxy {

namespace {
constexpr auto kRequestTimeout = std::chrono::seconds(10);
// A heartbeat answers at once on a live node: a silent one is noticed within this.
constexpr auto kHeartbeatTimeout = std::chrono::seconds(2);
// A cluster that did not answer at all (connection refused, closed, silent) is tried again at
// least this often whatever backoff accumulated, so readiness turns 200 within about this once
// it answers (issue 19); an attempt on a node that is down costs nothing. A cluster that
// answers with a refusal (credentials, TLS, errors) waits out the backoff.
constexpr int kUnreachableRetryMs = 1000;
// Requests answered again while disconnected: the next attempt within this, and no sooner.
constexpr auto kWakeGap = std::chrono::milliseconds(500);
// A node that answers unlike the TLS configured is probed on a fresh connection this long.
constexpr auto kTlsProbeTimeout = std::chrono::seconds(2);
// A cluster down for long logs its failures at counts 1, 2, 4, 8... and at least this often.
constexpr auto kLoudInterval = std::chrono::seconds(30);

std::string endpoint_string(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

const std::optional<cql::Bytes>* column(const cql::RowsResult& rows, std::size_t row,
                                        const std::string& name) {
  const auto& cols = rows.metadata.columns;
  for (std::size_t i = 0; i < cols.size() && i < rows.rows[row].size(); ++i)
    if (cols[i].name == name) return &rows.rows[row][i];
  return nullptr;
}

std::optional<asio::ip::address> inet_column(const cql::RowsResult& rows, std::size_t row,
                                             const std::string& name) {
  const auto* v = column(rows, row, name);
  if (!v || !*v) return std::nullopt;
  const auto& b = **v;
  if (b.size() == 4) {
    asio::ip::address_v4::bytes_type a;
    for (int k = 0; k < 4; ++k) a[k] = std::to_integer<unsigned char>(b[k]);
    return asio::ip::address(asio::ip::address_v4(a));
  }
  if (b.size() == 16) {
    asio::ip::address_v6::bytes_type a;
    for (int k = 0; k < 16; ++k) a[k] = std::to_integer<unsigned char>(b[k]);
    return asio::ip::address(asio::ip::address_v6(a));
  }
  return std::nullopt;
}

std::string text_column(const cql::RowsResult& rows, std::size_t row, const std::string& name) {
  const auto* v = column(rows, row, name);
  return v && *v ? cql::to_string(**v) : "";
}

std::string version_label(uint8_t v) {
  if (v == 0x41) return "DSE_V1";
  if (v == 0x42) return "DSE_V2";
  return "OSS " + std::to_string(v);
}

// The next version to try after `v` was refused: DSE_V2 → DSE_V1 → 5 → 4 → 3; 0 when none.
uint8_t lower_version(uint8_t v) {
  switch (v) {
    case 0x42:
      return 0x41;
    case 0x41:
      return 5;
    case 5:
      return 4;
    case 4:
      return 3;
    default:
      return 0;
  }
}
}  // namespace

std::string summarize_failures(const std::vector<std::string>& failures) {
  // Reasons that differ only in the node ("ip:port") are given once, naming the other nodes.
  static const std::regex node(R"(\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d+\b)");
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // key → reasons
  for (const auto& r : failures) {
    const std::string key = std::regex_replace(r, node, "*");
    auto it = std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.first == key; });
    if (it == groups.end())
      groups.push_back({key, {r}});
    else
      it->second.push_back(r);
  }
  std::string out;
  for (const auto& [key, reasons] : groups) {
    out += (out.empty() ? "" : "; ") + reasons.front();
    if (reasons.size() == 1) continue;
    std::string others;
    for (std::size_t i = 1; i < reasons.size(); ++i) {
      std::smatch m;
      if (std::regex_search(reasons[i], m, node)) others += (others.empty() ? "" : ", ") + m.str();
    }
    if (!others.empty()) out += " (the same for " + others + ")";
  }
  return out;
}

void DataPathEvidence::answered(Clock::time_point now) {
  answered_at_.store(ticks(now), std::memory_order_relaxed);
}

void DataPathEvidence::stuck(int requests, Clock::time_point now) {
  const int64_t t = ticks(now);
  stuck_at_.store(t, std::memory_order_relaxed);
  // The reports of one round of sweeps (each session's, within a second) add up.
  int64_t start = window_at_.load(std::memory_order_relaxed);
  if (t - start > Clock::duration(std::chrono::milliseconds(900)).count() &&
      window_at_.compare_exchange_strong(start, t))
    stuck_requests_.store(requests, std::memory_order_relaxed);
  else
    stuck_requests_.fetch_add(requests, std::memory_order_relaxed);
}

std::string DataPathEvidence::stalled(Clock::time_point now) const {
  const int64_t t = ticks(now);
  const int64_t stuck_at = stuck_at_.load(std::memory_order_relaxed);
  const int64_t answered_at = answered_at_.load(std::memory_order_relaxed);
  if (t - stuck_at > Clock::duration(kFresh).count() ||
      t - answered_at < Clock::duration(kSilent).count())
    return "";
  const int n = stuck_requests_.load(std::memory_order_relaxed);
  std::string out = std::to_string(n) + (n == 1 ? " request" : " requests") +
                    " unanswered for over 1 s, and no request connection read anything ";
  if (answered_at == kNever) return out + "since the proxy started";
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f",
                std::chrono::duration<double>(Clock::duration(t - answered_at)).count());
  return out + "for " + secs + " s";
}

ControlConnection::ControlConnection(asio::io_context& ioc, const Config& config, Cluster cluster,
                                     net::HopSettings hop)
    : ioc_(ioc), config_(config), cluster_(cluster), hop_(std::move(hop)), sleep_(ioc) {}

std::string ControlConnection::address() const {
  std::lock_guard lock(mu_);
  return address_;
}

std::shared_ptr<const SystemSnapshot> ControlConnection::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

ClusterFacts ControlConnection::facts() const {
  std::lock_guard lock(mu_);
  return facts_;
}

tcp::endpoint ControlConnection::pick_node() {
  std::lock_guard lock(mu_);
  if (assigned_.empty())
    throw std::runtime_error(std::string("no known ") + cluster_name(cluster_) + " nodes");
  return assigned_[next_node_++ % assigned_.size()];
}

std::size_t ControlConnection::assigned_count() const {
  std::lock_guard lock(mu_);
  return assigned_.size();
}

std::vector<tcp::endpoint> ControlConnection::failover_order() {
  std::lock_guard lock(mu_);
  std::vector<tcp::endpoint> out;
  const std::size_t n = assigned_.size();
  const uint64_t first = n ? next_node_++ : 0;
  for (std::size_t i = 0; i < n; ++i) out.push_back(assigned_[(first + i) % n]);
  for (const auto& ep : local_nodes_)
    if (std::find(assigned_.begin(), assigned_.end(), ep) == assigned_.end()) out.push_back(ep);
  return out;
}

bool ControlConnection::assigned(const std::string& node) const {
  std::lock_guard lock(mu_);
  for (const auto& ep : assigned_)
    if (endpoint_string(ep) == node) return true;
  return false;
}

void ControlConnection::stop() {
  stopped_ = true;
  if (conn_) conn_->close();
  sleep_.cancel();
}

void ControlConnection::check_now() {
  if (check_requested_.exchange(true)) return;
  asio::post(ioc_, [this] { sleep_.cancel(); });
}

void ControlConnection::data_path_answered() {
  evidence_.answered(DataPathEvidence::Clock::now());
  if (connected_.load(std::memory_order_relaxed) || wake_requested_.exchange(true)) return;
  asio::post(ioc_, [this] {
    if (!connected_) sleep_.cancel();
  });
}

void ControlConnection::data_path_stuck(int requests) {
  evidence_.stuck(requests, DataPathEvidence::Clock::now());
}

std::string ControlConnection::last_failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void ControlConnection::failed(spdlog::level::level_enum level, bool unreachable,
                               const std::string& reason, const std::string& line) {
  spdlog::log(quiet_ ? spdlog::level::debug : level, line);
  if (!unreachable) unreachable_ = false;
  round_failures_.push_back(reason);
}

awaitable<std::optional<cql::RowsResult>> ControlConnection::query(const char* text,
                                                                   int16_t stream) {
  cql::QueryMsg q;
  q.query = text;
  const uint8_t v = conn_->version();
  auto resp = co_await conn_->exchange(
      cql::encode_message(v, false, stream, cql::Opcode::kQuery, q), kRequestTimeout);
  if (!resp || resp->header.opcode != cql::Opcode::kResult) co_return std::nullopt;
  try {
    cql::Reader r(resp->body);
    cql::skip_response_prefix(r, resp->header.flags);
    auto result = cql::ResultMsg::decode(r, v);
    if (auto* rows = std::get_if<cql::RowsResult>(&result.body)) co_return std::move(*rows);
  } catch (const cql::ProtocolError& e) {
    spdlog::warn("Bad response to '{}' from {}: {}", text, cluster_name(cluster_), e.what());
  }
  co_return std::nullopt;
}

std::vector<tcp::endpoint> datacenter_nodes(const cql::RowsResult& local,
                                            const cql::RowsResult& peers,
                                            const asio::ip::address& contacted, int port,
                                            const std::string& dc) {
  const auto p = static_cast<unsigned short>(port);
  std::vector<tcp::endpoint> nodes;
  if (!local.rows.empty() && text_column(local, 0, "data_center") == dc)
    nodes.emplace_back(contacted, p);
  for (std::size_t i = 0; i < peers.rows.size(); ++i) {
    if (text_column(peers, i, "data_center") != dc) continue;
    auto addr = inet_column(peers, i, "rpc_address");
    if (!addr || addr->is_unspecified()) addr = inet_column(peers, i, "peer");
    if (addr) nodes.emplace_back(*addr, p);
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

std::vector<tcp::endpoint> assigned_nodes(const std::vector<tcp::endpoint>& nodes,
                                          const tcp::endpoint& contacted, bool enabled,
                                          std::size_t proxies, std::size_t index) {
  if (!enabled || nodes.empty()) return {contacted};
  const std::size_t n = std::max<std::size_t>(1, proxies);
  std::vector<tcp::endpoint> assigned;
  if (nodes.size() >= n) {
    for (std::size_t p = 0; p < nodes.size(); ++p)
      if (p % n == index % n) assigned.push_back(nodes[p]);
  } else {
    assigned.push_back(nodes[index % nodes.size()]);
  }
  return assigned;
}

bool ControlConnection::handshake_failed(const net::HandshakeResult& shake, const tcp::endpoint& ep,
                                         uint8_t version) {
  const char* name = cluster_name(cluster_);
  const std::string node = endpoint_string(ep);
  const std::string prefix = cluster_ == Cluster::kOrigin ? "origin" : "target";
  const std::string user = config_.username(cluster_);
  using Failure = net::HandshakeResult::Failure;
  using spdlog::level::err;
  using spdlog::level::warn;
  switch (shake.failure) {
    case Failure::kNone:
      break;
    case Failure::kNoAnswer:
    case Failure::kClosed:
      if (shake.step == std::string_view("AUTH_RESPONSE")) {
        const std::string r = fmt::format("{} refused the credentials of {}_username '{}': {}",
                                          node, prefix, user, shake.message);
        failed(err, false, r, fmt::format("{} at {}", name, r));
      } else {
        failed(
            warn, true, node + ": " + shake.why,
            fmt::format("No answer to {} from {} at {} ({})", shake.step, name, node, shake.why));
      }
      break;
    case Failure::kVersionRefused:  // answered with PROTOCOL_ERROR: the caller retries lower
      spdlog::debug("{} at {} refused protocol {}: {}", name, node, version_label(version),
                    shake.message);
      return true;
    case Failure::kError:
      failed(warn, false,
             fmt::format("{} answered {} with an error: {}", node, shake.step, shake.message),
             fmt::format("{} at {} answered {} with an error: {}", name, node, shake.step,
                         shake.message));
      break;
    case Failure::kNoCredentials: {
      const std::string r =
          fmt::format("{} requires authentication ({}) but {}_username and {}_password are not set",
                      name, shake.authenticator, prefix, prefix);
      failed(err, false, r, r);
      break;
    }
    case Failure::kAuthRefused: {
      const std::string r = fmt::format("{} refused the credentials of {}_username '{}': {}", node,
                                        prefix, user, shake.message);
      failed(err, false, r, fmt::format("{} at {}", name, r));
      break;
    }
    case Failure::kUnexpected:
      failed(warn, false, node + ": " + shake.why,
             fmt::format("Control connection handshake with {} at {} failed: {}", name, node,
                         shake.why));
      break;
  }
  return false;
}

awaitable<bool> ControlConnection::try_node(const tcp::endpoint& ep, const std::string& host,
                                            uint8_t version, bool& downgrade) {
  const char* name = cluster_name(cluster_);
  const std::string prefix = cluster_ == Cluster::kOrigin ? "origin" : "target";
  downgrade = false;
  conn_ = std::make_shared<net::NodeConnection>(ioc_);
  std::string why;
  const bool opened = co_await conn_->open(ep, host, hop_, why);
  if (!opened) {
    const std::string line =
        fmt::format("Failed to open control connection to {} using endpoint {}: {}", name,
                    endpoint_string(ep), why);
    // A TLS handshake that failed: the node answered, but not as configured.
    const bool tls_refused = why.starts_with("TLS handshake");
    const auto m = tls_refused ? co_await conn_->diagnose_tls(ep, hop_, kTlsProbeTimeout)
                               : net::TlsMismatch::kNone;
    if (m != net::TlsMismatch::kNone) {
      const std::string advice = tls_mismatch_advice(cluster_, endpoint_string(ep), m);
      failed(spdlog::level::err, false, advice, line + "; " + advice);
    } else {
      failed(spdlog::level::warn, !tls_refused, endpoint_string(ep) + ": " + why, line);
    }
    co_return false;
  }
  net::HandshakeSettings settings;
  settings.version = version;
  settings.ask_options = true;
  settings.credentials = net::Credentials{config_.username(cluster_), config_.password(cluster_)};
  settings.timeout = kRequestTimeout;
  auto shake = co_await conn_->handshake(settings);
  if (shake.failure == net::HandshakeResult::Failure::kClosed && !hop_.tls &&
      shake.step == std::string_view("OPTIONS")) {
    // Closed at the first frame: a node that expects TLS does that (or answers with an alert).
    const auto m = co_await conn_->diagnose_tls(ep, hop_, kTlsProbeTimeout);
    if (m != net::TlsMismatch::kNone) {
      const std::string advice = tls_mismatch_advice(cluster_, endpoint_string(ep), m);
      failed(spdlog::level::err, false, advice,
             fmt::format("Control connection to {} at {} failed: {}", name, endpoint_string(ep),
                         advice));
      co_return false;
    }
  }
  if (shake.failure != net::HandshakeResult::Failure::kNone) {
    downgrade = handshake_failed(shake, ep, version);
    co_return false;
  }
  ClusterFacts facts;
  facts.version = version;
  facts.supported = std::move(shake.supported);
  facts.auth_required = !shake.authenticator.empty();
  facts.authenticator = shake.authenticator;
  auto local = co_await query("SELECT * FROM system.local", 2);
  auto peers = co_await query("SELECT * FROM system.peers", 3);
  if (!local || local->rows.empty() || !peers) {
    failed(spdlog::level::warn, true,
           endpoint_string(ep) + ": no answer to system.local/system.peers",
           fmt::format("Could not read system.local/system.peers from {} at {}", name,
                       endpoint_string(ep)));
    co_return false;
  }
  // Nodes of the local datacenter (configured, else the contacted node's).
  const int port = config_.port(cluster_);
  std::string dc = config_.local_datacenter(cluster_);
  if (dc.empty()) dc = text_column(*local, 0, "data_center");
  const tcp::endpoint self_ep(ep.address(), static_cast<unsigned short>(port));
  const auto nodes = datacenter_nodes(*local, *peers, ep.address(), port, dc);
  if (nodes.empty()) {
    const std::string r =
        fmt::format("{} has no node in datacenter '{}' ({}_local_datacenter)", name, dc, prefix);
    failed(spdlog::level::err, false, r, r);
    co_return false;
  }
  const auto assigned =
      assigned_nodes(nodes, self_ep, config_.enable_host_assignment(cluster_),
                     config_.proxy_topology_addresses.size(),
                     static_cast<std::size_t>(std::max(0, config_.proxy_topology_index)));
  auto snap = std::make_shared<SystemSnapshot>();
  snap->local = std::move(*local);
  snap->peers_metadata = peers->metadata;
  std::string list;
  for (const auto& a : assigned) list += (list.empty() ? "" : ", ") + endpoint_string(a);
  {
    std::lock_guard lock(mu_);
    snapshot_ = snap;
    address_ = endpoint_string(ep);
    assigned_ = assigned;
    local_nodes_ = nodes;
    facts_ = facts;
    failure_.clear();
  }
  spdlog::info(
      "Successfully opened control connection to {} using endpoint {} with ProtocolVersion {}{}{}.",
      name, endpoint_string(ep), version_label(version), hop_.tls ? ", TLS" : "",
      facts.auth_required ? ", authenticated as " + config_.username(cluster_) : "");
  spdlog::info("Refreshed {} hosts in datacenter {}: {} known, assigned to this proxy: [{}]", name,
               dc, nodes.size(), list);
  co_return true;
}

awaitable<bool> ControlConnection::open_and_refresh() {
  const auto& points = config_.contact_points(cluster_);
  const int port = config_.port(cluster_);
  const char* name = cluster_name(cluster_);
  for (const auto& point : points) {
    boost::system::error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = co_await resolver.async_resolve(point, std::to_string(port), nothrow(ec));
    if (ec) {
      failed(spdlog::level::warn, true, point + ": " + ec.message(),
             fmt::format("Could not resolve {} contact point {}: {}", name, point, ec.message()));
      continue;
    }
    for (const auto& entry : results) {
      for (uint8_t v = config_.max_control_version(); v != 0 && !stopped_; v = lower_version(v)) {
        bool downgrade = false;
        if (co_await try_node(entry.endpoint(), point, v, downgrade)) co_return true;
        if (conn_) conn_->close();
        if (!downgrade) break;
      }
    }
  }
  co_return false;
}

awaitable<bool> ControlConnection::heartbeat(std::string& why) {
  const auto sent = std::chrono::steady_clock::now();
  auto resp = co_await conn_->exchange(
      cql::encode_empty(conn_->version(), false, 4, cql::Opcode::kOptions), kHeartbeatTimeout);
  if (resp && resp->header.opcode == cql::Opcode::kSupported) co_return true;
  const std::string node = address();
  if (resp)
    why = node + " answered OPTIONS with " + cql::opcode_name(resp->header.opcode);
  else if (std::chrono::steady_clock::now() - sent < kHeartbeatTimeout)
    why = node + " closed the control connection";
  else
    why = "no answer to OPTIONS from " + node + " within " +
          std::to_string(std::chrono::milliseconds(kHeartbeatTimeout).count()) + " ms";
  co_return false;
}

awaitable<void> ControlConnection::run() {
  using Clock = std::chrono::steady_clock;
  const char* name = cluster_name(cluster_);
  double backoff = config_.heartbeat_retry_interval_min_ms;
  auto loud_at = Clock::time_point{};
  while (!stopped_) {
    // A cluster down for long: its failures are logged at counts 1, 2, 4, 8... and at least
    // every kLoudInterval, not at every attempt.
    const int f = failures_.load();
    quiet_ = f > 0 && ((f + 1) & f) != 0 && Clock::now() - loud_at < kLoudInterval;
    if (!quiet_) loud_at = Clock::now();
    unreachable_ = true;
    round_failures_.clear();
    bool ok = false;
    try {
      ok = co_await open_and_refresh();
    } catch (const std::exception& e) {
      failed(spdlog::level::err, false, e.what(),
             fmt::format("Control connection to {} failed: {}", name, e.what()));
    }
    attempted_ = true;
    if (ok) {
      connected_ = true;
      failures_ = 0;
      backoff = config_.heartbeat_retry_interval_min_ms;
      while (!stopped_) {
        boost::system::error_code ec;
        if (!check_requested_) {
          // Between heartbeats nothing is read: a node that closes the connection (stopped,
          // restarted) makes it readable, which cuts the sleep short.
          sleep_.expires_after(std::chrono::milliseconds(config_.heartbeat_interval_ms));
          auto conn = conn_;
          conn->stream().socket().async_wait(tcp::socket::wait_read,
                                             [this, conn](boost::system::error_code e) {
                                               if (e != asio::error::operation_aborted)
                                                 sleep_.cancel();
                                             });
          co_await sleep_.async_wait(nothrow(ec));
          boost::system::error_code ignored;
          conn->stream().socket().cancel(ignored);
        }
        check_requested_ = false;
        if (stopped_) break;
        bool alive = false;
        std::string why;
        try {
          alive = co_await heartbeat(why);
        } catch (const std::exception& e) {
          why = e.what();
        }
        if (!alive) {
          quiet_ = false;
          round_failures_ = {why};
          spdlog::warn("Heartbeat on {} control connection failed ({}); reconnecting", name, why);
          break;
        }
      }
      connected_ = false;
      if (conn_) conn_->close();
      {
        std::lock_guard lock(mu_);
        address_ = "NOT_CONNECTED";
      }
      if (stopped_) break;
    }
    {
      std::string all = summarize_failures(round_failures_);
      std::lock_guard lock(mu_);
      failure_ = all.empty() ? "no contact point answered" : std::move(all);
    }
    ++failures_;
    // Nothing answered: tried again within a second whatever the backoff (readiness follows
    // a cluster that comes back); a refusal waits out the backoff.
    const int wait =
        unreachable_
            ? std::min(static_cast<int>(backoff),
                       std::max(kUnreachableRetryMs, config_.heartbeat_retry_interval_min_ms))
            : static_cast<int>(backoff);
    if (!quiet_)
      spdlog::warn("Could not open control connection to {} (failure {}); retrying in {} ms", name,
                   failures_.load(), wait);
    const auto ended = Clock::now();
    boost::system::error_code ec;
    bool woken = wake_requested_.exchange(false);
    if (!woken) {
      sleep_.expires_after(std::chrono::milliseconds(wait));
      co_await sleep_.async_wait(nothrow(ec));
      woken = wake_requested_.exchange(false);
    }
    if (woken && !stopped_) {
      // Request connections to this cluster read answers: it is back. Tried again at once
      // (yet not more than once per kWakeGap), the backoff reset.
      backoff = config_.heartbeat_retry_interval_min_ms;
      if (Clock::now() < ended + kWakeGap) {
        sleep_.expires_at(ended + kWakeGap);
        co_await sleep_.async_wait(nothrow(ec));
      }
      wake_requested_ = false;
    } else {
      backoff = std::min<double>(backoff * config_.heartbeat_retry_backoff_factor,
                                 config_.heartbeat_retry_interval_max_ms);
    }
    check_requested_ = false;
  }
}

}  // namespace zdm::proxy
