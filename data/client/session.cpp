#include "data/client/session.h"

#include <algorithm>
#include <random>

#include "common/cql/version.h"

namespace zdm::data {

namespace {

using Clock = std::chrono::steady_clock;

std::string endpoint_text(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

cql::ErrorMsg decode_error(const cql::Frame& f) {
  cql::Reader r(f.body);
  cql::skip_response_prefix(r, f.header.flags);
  return cql::ErrorMsg::decode(r);
}

std::string text_of(const Page& p, std::size_t row, const char* col) {
  int i = p.column(col);
  if (i < 0) return "";
  auto v = p.at(row, static_cast<std::size_t>(i));
  return v ? cql::to_string(*v) : "";
}

// A QUERY on one connection during discovery; throws ClusterError.
awaitable<Page> discovery_query(Connection& conn, const ClusterConfig& config,
                                const std::string& text) {
  cql::QueryMsg q;
  q.query = text;
  q.params.consistency = cql::Consistency::kOne;
  auto resp =
      co_await conn.request(cql::encode_message(conn.version(), false, 0, cql::Opcode::kQuery, q),
                            config.request_timeout);
  if (!resp) throw ClusterError(config.label + ": no answer to '" + text + "' from " + conn.node());
  if (resp->header.opcode == cql::Opcode::kError)
    throw ClusterError(config.label + ": '" + text + "' failed on " + conn.node() + ": " +
                       decode_error(*resp).message);
  try {
    co_return Page::decode(std::move(resp->body), resp->header.flags, conn.version());
  } catch (const cql::ProtocolError& e) {
    throw ClusterError(config.label + ": bad answer to '" + text + "': " + e.what());
  }
}

}  // namespace

std::string error_reason(cql::ErrorCode code) {
  switch (code) {
    case cql::ErrorCode::kWriteTimeout:
      return "write_timeout";
    case cql::ErrorCode::kReadTimeout:
      return "read_timeout";
    case cql::ErrorCode::kUnavailable:
      return "unavailable";
    case cql::ErrorCode::kOverloaded:
      return "overloaded";
    case cql::ErrorCode::kIsBootstrapping:
      return "is_bootstrapping";
    case cql::ErrorCode::kServerError:
      return "server_error";
    case cql::ErrorCode::kReadFailure:
      return "read_failure";
    case cql::ErrorCode::kWriteFailure:
      return "write_failure";
    case cql::ErrorCode::kUnprepared:
      return "unprepared";
    default:
      return "error";
  }
}

bool retryable(cql::ErrorCode code) {
  switch (code) {
    case cql::ErrorCode::kWriteTimeout:
    case cql::ErrorCode::kReadTimeout:
    case cql::ErrorCode::kUnavailable:
    case cql::ErrorCode::kOverloaded:
    case cql::ErrorCode::kIsBootstrapping:
    case cql::ErrorCode::kServerError:
    case cql::ErrorCode::kReadFailure:
    case cql::ErrorCode::kWriteFailure:
      return true;
    default:
      return false;
  }
}

namespace {

// The first connection that a contact point accepts, each tried with protocol v5 then v4 (or
// from --*-protocol-version down); `contacted` is its endpoint. Throws ClusterError when none
// answers (every reason in the message) or when one refuses in a way every node would (bad
// credentials, TLS).
awaitable<std::shared_ptr<Connection>> first_contact(asio::io_context& ioc,
                                                     const ClusterConfig& config,
                                                     tcp::endpoint& contacted) {
  std::vector<std::string> problems;
  for (const auto& point : config.contact_points) {
    std::string host = point;
    int port = config.port;
    if (auto colon = point.rfind(':'); colon != std::string::npos && point.find(':') == colon) {
      host = point.substr(0, colon);
      port = std::stoi(point.substr(colon + 1));
    }
    net::error_code ec;
    tcp::resolver resolver(ioc);
    auto results = co_await resolver.async_resolve(host, std::to_string(port), net::nothrow(ec));
    if (ec) {
      problems.push_back(point + ": " + ec.message());
      continue;
    }
    for (const auto& entry : results) {
      for (uint8_t v = config.max_version; v >= 4; --v) {
        OpenFailure failure;
        auto conn =
            co_await Connection::open(ioc, entry.endpoint(), host, v, config.connect, failure);
        if (conn) {
          contacted = entry.endpoint();
          co_return conn;
        }
        if (failure.same_everywhere)  // every node would say the same: stop here
          throw ClusterError(config.label + ": " + endpoint_text(entry.endpoint()) + ": " +
                             failure.why);
        if (!failure.version_refused) {
          problems.push_back(endpoint_text(entry.endpoint()) + ": " + failure.why);
          break;
        }
        if (v == 4)
          problems.push_back(endpoint_text(entry.endpoint()) +
                             ": refuses protocol v4 and v5 (zdm-data needs v4 or later)");
      }
    }
  }
  std::string all;
  for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
  throw ClusterError(config.label + ": no contact point answered (" + all + ")");
}

// Fills info's nodes and ring from system.local (the contacted node) and system.peers (nodes
// reached on `contacted`'s port). Throws ClusterError on a row it cannot read or an empty ring.
void read_ring(ClusterInfo& info, const ClusterConfig& config, const Page& local, const Page& peers,
               const tcp::endpoint& contacted) {
  auto tokens_of = [&](const Page& p, std::size_t row) {
    int i = p.column("tokens");
    auto v = i < 0 ? std::nullopt : p.at(row, static_cast<std::size_t>(i));
    return v ? read_text_collection(*v) : std::vector<std::string>{};
  };
  const auto port = contacted.port();
  info.nodes.push_back(
      Node{contacted.address().to_string(), contacted, text_of(local, 0, "data_center")});
  try {
    info.ring.add(0, tokens_of(local, 0));
    for (std::size_t r = 0; r < peers.rows(); ++r) {
      std::string addr;
      for (const char* col : {"rpc_address", "peer"}) {
        int i = peers.column(col);
        auto v = i < 0 ? std::nullopt : peers.at(r, static_cast<std::size_t>(i));
        if (v) addr = inet_text(*v);
        if (!addr.empty() && addr != "0.0.0.0" && addr != "::") break;
      }
      if (addr.empty()) continue;
      tcp::endpoint ep(asio::ip::make_address(addr), port);
      info.ring.add(info.nodes.size(), tokens_of(peers, r));
      info.nodes.push_back(Node{addr, ep, text_of(peers, r, "data_center")});
    }
  } catch (const std::exception& e) {
    throw ClusterError(config.label + ": bad system.local/system.peers: " + e.what());
  }
  if (info.ring.empty()) throw ClusterError(config.label + ": no node lists any token");
}

// The rows of system_schema.columns.
std::vector<ColumnRow> column_rows(const Page& cols) {
  std::vector<ColumnRow> out;
  for (std::size_t r = 0; r < cols.rows(); ++r) {
    ColumnRow c{text_of(cols, r, "keyspace_name"),
                text_of(cols, r, "table_name"),
                text_of(cols, r, "column_name"),
                text_of(cols, r, "kind"),
                text_of(cols, r, "type"),
                text_of(cols, r, "clustering_order"),
                -1};
    int pi = cols.column("position");
    if (auto v = pi < 0 ? std::nullopt : cols.at(r, static_cast<std::size_t>(pi)))
      c.position = read_int(*v);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

awaitable<ClusterInfo> discover(asio::io_context& ioc, const ClusterConfig& config) {
  ClusterInfo info;
  info.label = config.label;
  tcp::endpoint contacted;
  std::shared_ptr<Connection> conn = co_await first_contact(ioc, config, contacted);
  info.version = conn->version();
  auto local = co_await discovery_query(*conn, config, "SELECT * FROM system.local");
  auto peers = co_await discovery_query(*conn, config, "SELECT * FROM system.peers");
  if (local.rows() != 1) throw ClusterError(config.label + ": system.local has no row");
  info.cluster_name = text_of(local, 0, "cluster_name");
  info.release_version = text_of(local, 0, "release_version");
  info.partitioner = text_of(local, 0, "partitioner");
  if (!info.partitioner.empty() && !info.partitioner.ends_with("Murmur3Partitioner"))
    throw ClusterError(config.label + " uses " + info.partitioner +
                       ": zdm-data scans Murmur3Partitioner token ranges only");
  read_ring(info, config, local, peers, contacted);
  auto cols = co_await discovery_query(*conn, config, "SELECT * FROM system_schema.columns");
  info.columns = column_rows(cols);
  conn->close();
  co_return info;
}

Session::Session(asio::io_context& ioc, ClusterConfig config, const ClusterInfo& info,
                 RetryHook on_retry)
    : ioc_(ioc),
      config_(std::move(config)),
      info_(info),
      on_retry_(std::move(on_retry)),
      conns_(info.nodes.size()),
      down_until_(info.nodes.size()),
      opening_(info.nodes.size(), false),
      open_waiters_(info.nodes.size()) {}

Session::~Session() {
  close();
}

void Session::close() {
  for (auto& c : conns_)
    if (c) c->close();
}

awaitable<std::shared_ptr<Connection>> Session::connection(std::size_t node, std::string& why) {
  while (opening_[node]) {  // another request is opening it: wait for the outcome
    asio::steady_timer wait(ioc_);
    wait.expires_after(config_.connect.hop.connect_timeout + config_.connect.handshake_timeout);
    open_waiters_[node].push_back(&wait);
    net::error_code ec;
    co_await wait.async_wait(net::nothrow(ec));
    std::erase(open_waiters_[node], &wait);
  }
  if (conns_[node] && conns_[node]->usable()) co_return conns_[node];
  if (Clock::now() < down_until_[node]) {
    why = "node " + info_.nodes[node].host + " is marked down after a failed connection";
    co_return nullptr;
  }
  opening_[node] = true;
  OpenFailure failure;
  const Node& n = info_.nodes[node];
  auto conn =
      co_await Connection::open(ioc_, n.endpoint, n.host, info_.version, config_.connect, failure);
  opening_[node] = false;
  for (auto* w : open_waiters_[node]) w->cancel();
  if (!conn) {
    why = endpoint_text(n.endpoint) + ": " + failure.why;
    down_until_[node] = Clock::now() + std::chrono::seconds(1);
    co_return nullptr;
  }
  conns_[node] = conn;
  co_return conn;
}

awaitable<std::shared_ptr<Statement>> Session::prepare(std::string query) {
  auto stmt = std::make_shared<Statement>();
  stmt->query = std::move(query);
  stmt->prepared_on.assign(info_.nodes.size(), false);
  std::string why;
  for (int attempt = 0; attempt < config_.max_attempts; ++attempt) {
    const std::size_t node = (rotation_++) % info_.nodes.size();
    auto conn = co_await connection(node, why);
    if (conn && co_await ensure_prepared(*stmt, node, *conn, why)) co_return stmt;
    asio::steady_timer pause(ioc_);
    pause.expires_after(config_.backoff_min);
    net::error_code ec;
    co_await pause.async_wait(net::nothrow(ec));
  }
  throw RequestError(config_.label + ": could not prepare \"" + stmt->query + "\": " + why,
                     std::nullopt);
}

awaitable<bool> Session::ensure_prepared(Statement& stmt, std::size_t node, Connection& conn,
                                         std::string& why) {
  if (stmt.prepared_on[node]) co_return true;
  cql::PrepareMsg p;
  p.query = stmt.query;
  auto resp =
      co_await conn.request(cql::encode_message(conn.version(), false, 0, cql::Opcode::kPrepare, p),
                            config_.request_timeout);
  if (!resp) {
    why = "no answer to PREPARE from " + conn.node();
    co_return false;
  }
  if (resp->header.opcode == cql::Opcode::kError) {
    auto e = decode_error(*resp);
    if (!retryable(e.code))
      throw RequestError(config_.label + ": " + e.message + " (preparing \"" + stmt.query + "\")",
                         e.code);
    why = e.message;
    co_return false;
  }
  cql::Reader r(resp->body);
  cql::skip_response_prefix(r, resp->header.flags);
  auto result = cql::ResultMsg::decode(r, conn.version());
  auto* prepared = std::get_if<cql::PreparedResult>(&result.body);
  if (!prepared) {
    why = "PREPARE answered without a prepared id";
    co_return false;
  }
  stmt.id = prepared->id;
  stmt.result_metadata_id = prepared->result_metadata_id;
  stmt.prepared_on[node] = true;
  co_return true;
}

awaitable<std::optional<cql::Frame>> Session::execute(Statement& stmt, Call call) {
  const std::size_t n = info_.nodes.size();
  std::size_t first = call.routing_token ? info_.ring.owner(*call.routing_token) : rotation_++ % n;
  std::string why;
  int reprepares = 0;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  for (int attempt = 0; attempt < config_.max_attempts; ++attempt) {
    if (attempt > 0) {
      auto base = std::min<int64_t>(config_.backoff_max.count(), config_.backoff_min.count()
                                                                     << std::min(attempt - 1, 20));
      std::uniform_int_distribution<int64_t> jitter(base * 4 / 5, base * 6 / 5);
      asio::steady_timer pause(ioc_);
      pause.expires_after(std::chrono::milliseconds(jitter(rng)));
      net::error_code ec;
      co_await pause.async_wait(net::nothrow(ec));
    }
    if (call.before_attempt && !call.before_attempt(call.values)) co_return std::nullopt;
    // The partition's owner first; a failure moves the request to the next node.
    const std::size_t node = (first + static_cast<std::size_t>(attempt)) % n;
    auto conn = co_await connection(node, why);
    if (!conn) {
      if (on_retry_) on_retry_("connection");
      continue;
    }
    if (!co_await ensure_prepared(stmt, node, *conn, why)) {
      if (on_retry_) on_retry_("prepare");
      continue;
    }
    cql::ExecuteMsg msg;
    msg.id = stmt.id;
    msg.result_metadata_id = stmt.result_metadata_id;
    msg.params.consistency = call.consistency.value_or(call.write ? config_.write_consistency
                                                                  : config_.read_consistency);
    msg.params.values = call.values;
    if (call.page_size > 0) {
      msg.params.flags |= cql::query_flag::kPageSize;
      msg.params.page_size = call.page_size;
    }
    if (call.paging_state) {
      msg.params.flags |= cql::query_flag::kPagingState;
      msg.params.paging_state = call.paging_state;
    }
    auto resp = co_await conn->request(
        cql::encode_message(conn->version(), false, 0, cql::Opcode::kExecute, msg),
        config_.request_timeout);
    if (!resp) {
      const bool closed = !conn->usable();
      why = closed ? "the connection to " + conn->node() + " closed"
                   : "no answer from " + conn->node() + " within " +
                         std::to_string(config_.request_timeout.count()) + " ms";
      if (!call.idempotent) throw RequestError(config_.label + ": " + why, std::nullopt);
      if (on_retry_) on_retry_(closed ? "connection_closed" : "client_timeout");
      continue;
    }
    if (resp->header.opcode != cql::Opcode::kError) co_return resp;
    auto e = decode_error(*resp);
    if (e.code == cql::ErrorCode::kUnprepared && reprepares++ < 3) {
      stmt.prepared_on[node] = false;  // the node forgot it (restarted): prepare it again
      --attempt;
      continue;
    }
    why = e.message + " (" + error_reason(e.code) + " from " + conn->node() + ")";
    if (!retryable(e.code) || !call.idempotent)
      throw RequestError(config_.label + ": " + e.message, e.code);
    if (on_retry_) on_retry_(error_reason(e.code));
  }
  throw RequestError(config_.label + ": gave up after " + std::to_string(config_.max_attempts) +
                         " attempts: " + why,
                     std::nullopt);
}

awaitable<Page> Session::select(Statement& stmt, Call call) {
  call.write = false;
  auto f = co_await execute(stmt, std::move(call));
  if (!f) throw RequestError(config_.label + ": SELECT dropped", std::nullopt);
  try {
    co_return Page::decode(std::move(f->body), f->header.flags, info_.version);
  } catch (const cql::ProtocolError& e) {
    throw RequestError(config_.label + ": bad rows from \"" + stmt.query + "\": " + e.what(),
                       std::nullopt);
  }
}

}  // namespace zdm::data
