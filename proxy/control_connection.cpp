#include "proxy/control_connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy/cql/messages.h"

namespace zdm::proxy {

namespace {
constexpr uint8_t kVersion = 4;
constexpr auto kRequestTimeout = std::chrono::seconds(10);

std::string endpoint_string(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::optional<asio::ip::address> inet_column(const cql::RowsResult& rows, std::size_t row,
                                             const std::string& name) {
  const auto& cols = rows.metadata.columns;
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (cols[i].name != name || !rows.rows[row][i]) continue;
    const auto& b = *rows.rows[row][i];
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
  }
  return std::nullopt;
}
}  // namespace

ControlConnection::ControlConnection(asio::io_context& ioc, const Config& config, Cluster cluster)
    : ioc_(ioc), config_(config), cluster_(cluster), socket_(ioc), sleep_(ioc) {}

std::string ControlConnection::address() const {
  std::lock_guard lock(mu_);
  return address_;
}

std::shared_ptr<const SystemSnapshot> ControlConnection::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

tcp::endpoint ControlConnection::pick_node() {
  std::lock_guard lock(mu_);
  if (assigned_.empty())
    throw std::runtime_error(std::string("no known ") + cluster_name(cluster_) + " nodes");
  return assigned_[next_node_++ % assigned_.size()];
}

void ControlConnection::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
  sleep_.cancel();
}

awaitable<std::optional<cql::Frame>> ControlConnection::request(const cql::Bytes& frame,
                                                                int16_t stream) {
  // A watchdog closes the socket if the response does not come in time.
  asio::steady_timer watchdog(ioc_);
  watchdog.expires_after(kRequestTimeout);
  watchdog.async_wait([this](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      socket_.close(ignored);
    }
  });
  boost::system::error_code ec;
  co_await asio::async_write(socket_, asio::buffer(frame), nothrow(ec));
  std::array<std::byte, 16384> buf;
  while (!ec) {
    cql::Frame f;
    while (decoder_.next(f)) {
      if (f.header.stream == stream) {
        watchdog.cancel();
        co_return f;
      }
    }
    std::size_t n = co_await socket_.async_read_some(asio::buffer(buf), nothrow(ec));
    if (!ec) decoder_.feed(cql::BytesView(buf.data(), n));
  }
  watchdog.cancel();
  co_return std::nullopt;
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
      spdlog::warn("Could not resolve {} contact point {}: {}", name, point, ec.message());
      continue;
    }
    for (const auto& entry : results) {
      socket_ = tcp::socket(ioc_);
      decoder_ = cql::FrameDecoder();
      asio::steady_timer watchdog(ioc_);
      watchdog.expires_after(std::chrono::milliseconds(config_.origin_connection_timeout_ms));
      watchdog.async_wait([this](boost::system::error_code e) {
        if (!e) {
          boost::system::error_code ignored;
          socket_.close(ignored);
        }
      });
      co_await socket_.async_connect(entry.endpoint(), nothrow(ec));
      watchdog.cancel();
      if (ec) {
        spdlog::warn("Failed to open control connection to {} using endpoint {}: {}", name,
                     endpoint_string(entry.endpoint()), ec.message());
        continue;
      }
      socket_.set_option(tcp::no_delay(true), ec);
      cql::StartupMsg startup{{{"CQL_VERSION", "3.0.0"}}};
      auto ready = co_await request(
          cql::encode_message(kVersion, false, 0, cql::Opcode::kStartup, startup), 0);
      if (!ready || ready->header.opcode != cql::Opcode::kReady) {
        spdlog::warn("Control connection handshake with {} at {} failed", name,
                     endpoint_string(entry.endpoint()));
        continue;
      }
      auto query = [&](const char* cql,
                       int16_t stream) -> awaitable<std::optional<cql::RowsResult>> {
        cql::QueryMsg q;
        q.query = cql;
        auto resp = co_await request(
            cql::encode_message(kVersion, false, stream, cql::Opcode::kQuery, q), stream);
        if (!resp || resp->header.opcode != cql::Opcode::kResult) co_return std::nullopt;
        try {
          cql::Reader r(resp->body);
          cql::skip_response_prefix(r, resp->header.flags);
          auto result = cql::ResultMsg::decode(r, kVersion);
          if (auto* rows = std::get_if<cql::RowsResult>(&result.body)) co_return std::move(*rows);
        } catch (const cql::ProtocolError& e) {
          spdlog::warn("Bad response to '{}' from {}: {}", cql, name, e.what());
        }
        co_return std::nullopt;
      };
      auto local = co_await query("SELECT * FROM system.local", 1);
      auto peers = co_await query("SELECT * FROM system.peers", 2);
      if (!local || local->rows.empty() || !peers) {
        spdlog::warn("Could not read system.local/system.peers from {} at {}", name,
                     endpoint_string(entry.endpoint()));
        continue;
      }
      auto snap = std::make_shared<SystemSnapshot>();
      snap->local = std::move(*local);
      snap->peers_metadata = peers->metadata;
      // Nodes: the one we reached plus every peer's rpc_address, sorted.
      std::vector<tcp::endpoint> nodes{
          tcp::endpoint(entry.endpoint().address(), static_cast<unsigned short>(port))};
      for (std::size_t i = 0; i < peers->rows.size(); ++i) {
        auto addr = inet_column(*peers, i, "rpc_address");
        if (!addr || addr->is_unspecified()) addr = inet_column(*peers, i, "peer");
        if (addr) nodes.emplace_back(*addr, static_cast<unsigned short>(port));
      }
      std::sort(nodes.begin(), nodes.end());
      nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
      const std::size_t n = std::max<std::size_t>(1, config_.proxy_topology_addresses.size());
      const std::size_t idx = static_cast<std::size_t>(std::max(0, config_.proxy_topology_index));
      std::vector<tcp::endpoint> assigned;
      if (nodes.size() >= n) {
        for (std::size_t p = 0; p < nodes.size(); ++p)
          if (p % n == idx % n) assigned.push_back(nodes[p]);
      } else {
        assigned.push_back(nodes[idx % nodes.size()]);
      }
      std::string list;
      for (const auto& a : assigned) list += (list.empty() ? "" : ", ") + endpoint_string(a);
      {
        std::lock_guard lock(mu_);
        snapshot_ = snap;
        address_ = endpoint_string(entry.endpoint());
        assigned_ = assigned;
      }
      spdlog::info(
          "Successfully opened control connection to {} using endpoint {} with ProtocolVersion OSS "
          "{}.",
          name, endpoint_string(entry.endpoint()), kVersion);
      spdlog::info("Refreshed {} hosts: {} known, assigned to this proxy: [{}]", name, nodes.size(),
                   list);
      co_return true;
    }
  }
  co_return false;
}

awaitable<bool> ControlConnection::heartbeat() {
  auto resp = co_await request(cql::encode_empty(kVersion, false, 3, cql::Opcode::kOptions), 3);
  co_return resp && resp->header.opcode == cql::Opcode::kSupported;
}

awaitable<void> ControlConnection::run() {
  const char* name = cluster_name(cluster_);
  double backoff = config_.heartbeat_retry_interval_min_ms;
  while (!stopped_) {
    bool ok = co_await open_and_refresh();
    attempted_ = true;
    if (ok) {
      connected_ = true;
      failures_ = 0;
      backoff = config_.heartbeat_retry_interval_min_ms;
      while (!stopped_) {
        boost::system::error_code ec;
        sleep_.expires_after(std::chrono::milliseconds(config_.heartbeat_interval_ms));
        co_await sleep_.async_wait(nothrow(ec));
        if (stopped_) break;
        if (!co_await heartbeat()) {
          spdlog::warn("Heartbeat on {} control connection failed; reconnecting", name);
          break;
        }
      }
      connected_ = false;
      boost::system::error_code ec;
      socket_.close(ec);
      {
        std::lock_guard lock(mu_);
        address_ = "NOT_CONNECTED";
      }
      if (stopped_) break;
    }
    ++failures_;
    spdlog::warn("Could not open control connection to {} (failure {}); retrying in {} ms", name,
                 failures_.load(), static_cast<int>(backoff));
    boost::system::error_code ec;
    sleep_.expires_after(std::chrono::milliseconds(static_cast<int>(backoff)));
    co_await sleep_.async_wait(nothrow(ec));
    backoff = std::min<double>(backoff * config_.heartbeat_retry_backoff_factor,
                               config_.heartbeat_retry_interval_max_ms);
  }
}

}  // namespace zdm::proxy
