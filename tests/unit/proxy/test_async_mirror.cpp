// proxy::AsyncMirror (DUAL_ASYNC_ON_SECONDARY) against zdm-testcluster's server run in this
// process (live_node.h) on 127.34.2.20-.59: the secondary (target) is a stand-in node found by a
// real control connection; the mirror replays the client's handshake on it, mirrors requests
// and counts the answers in the async node metrics. Each case asserts what the node saw (its
// connections, traces, prepared statements), what came back, and the metrics.
#include <doctest/doctest.h>

#include "proxy/async_mirror.h"
#include "proxy/control_connection.h"
#include "proxy/session.h"
#include "tests/unit/proxy/live_node.h"

using namespace zdm;
using namespace zdm::test;
using proxy::Connector;
using proxy::RequestType;

namespace {

const char* const kRead = "SELECT v FROM ks.t WHERE k = 1";

/// The session's part for the async connector: its frames go to the mirror (the session passes
/// them on and returns, nothing goes to the client), its close too. Writes down what the node
/// answered; `on_answer` runs before the mirror sees an answer.
class MirrorListener final : public proxy::ConnectorListener {
 public:
  explicit MirrorListener(proxy::AsyncMirror& m) : mirror_(m) {}
  void on_cluster_frame(Connector& from, cql::Header h, cql::Bytes frame) override {
    answers.push_back(h);
    if (on_answer) on_answer(h, frame);
    mirror_.on_frame(from, h, std::move(frame));
  }
  void on_connector_closed(Connector& c) override {
    ++closed;
    mirror_.on_closed(c);
  }
  net::awaitable<void> client_writable() override { co_return; }

  std::vector<cql::Header> answers;
  int closed = 0;
  std::function<void(const cql::Header&, const cql::Bytes&)> on_answer;

 private:
  proxy::AsyncMirror& mirror_;
};

struct Options {
  testcluster::ServerOptions server;
  bool prepared_per_node = false;
  std::string username, password;  // target_username / target_password (control connection)
  int max_stream_ids = 2048;
  int write_queue_frames = 2048;
};

proxy::Config make_config(const std::string& target, const Options& o) {
  proxy::Config c;
  c.read_mode = proxy::ReadMode::kDualAsyncOnSecondary;
  c.primary_cluster = proxy::Cluster::kOrigin;
  c.target_contact_points = {target};
  c.target_enable_host_assignment = false;  // the mirror connects to the node contacted
  c.target_username = o.username;
  c.target_password = o.password;
  c.control_conn_max_protocol_version = "4";
  c.proxy_max_stream_ids = o.max_stream_ids;
  c.async_connector_write_queue_size_frames = o.write_queue_frames;
  c.async_handshake_timeout_ms = 3000;
  return c;
}

/// A stand-in secondary on `addresses` (the mirror's node: the last one), the proxy's shared
/// state around it with a running target control connection, and one client's mirror.
struct Mirror {
  explicit Mirror(std::vector<std::string> addresses, Options o = {})
      : address(addresses.back()),
        cluster(ioc, addresses, o.server, o.prepared_per_node),
        config(make_config(address, o)),
        metrics(config, registry),
        origin_cc(ioc, config, proxy::Cluster::kOrigin, net::HopSettings{}),
        target_cc(ioc, config, proxy::Cluster::kTarget, net::HopSettings{}),
        shared(config, metrics, prepared, origin_cc, target_cc, proxy::VirtualTopology{}, nullptr),
        mirror(ioc, shared, client_addr),
        listener(std::make_shared<MirrorListener>(mirror)) {
    cluster.run(
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
        "'replication_factor': 1}");
    cluster.run("CREATE TABLE ks.t (k int PRIMARY KEY, v text)");
    cluster.run("INSERT INTO ks.t (k, v) VALUES (1, 'one')");
    asio::co_spawn(ioc, target_cc.run(), [this](std::exception_ptr) { cc_done = true; });
    REQUIRE(run_until(ioc, [&] { return target_cc.snapshot() != nullptr; }));
  }
  ~Mirror() {
    mirror.close();
    target_cc.stop();
    cluster.server.stop();
    run_until(ioc, [&] { return cc_done; });
    run_for(ioc, 50ms);
  }

  /// The async series of the mirror's node.
  proxy::NodeMetrics& node() { return metrics.node("async", address + ":9042"); }
  uint64_t failed(const char* label) { return node().requests_failed.at(label)->value(); }

  /// The client's STARTUP (on its own stream id, which the replay replaces).
  static cql::Bytes startup(cql::Compression compression = cql::Compression::kNone) {
    cql::StartupMsg m;
    m.options["CQL_VERSION"] = "3.0.0";
    if (compression != cql::Compression::kNone)
      m.options["COMPRESSION"] = cql::compression_name(compression);
    return cql::encode_message(4, false, 9, cql::Opcode::kStartup, m);
  }
  void start(net::Credentials creds = {}, cql::Compression compression = cql::Compression::kNone) {
    mirror.start(listener, 4, compression, startup(compression), std::move(creds));
  }
  /// Starts and waits until mirroring is on.
  void start_ready(net::Credentials creds = {},
                   cql::Compression compression = cql::Compression::kNone) {
    start(std::move(creds), compression);
    REQUIRE(run_until(ioc, [&] { return mirror.ready(); }));
  }
  /// Mirrors the client's request `id`: `frame` on the client's stream 44.
  void send(uint64_t id, const cql::Bytes& frame, cql::Opcode opcode = cql::Opcode::kQuery,
            std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now()) {
    mirror.mirror(id, frame, opcode, start, RequestType::kReadsTarget);
  }
  std::size_t traces() { return cluster.count_rows("SELECT * FROM system_traces.sessions"); }
  void faults(const char* json) {
    testcluster::merge_faults(cluster.server.faults(cluster.store.info().nodes.size() - 1),
                              nlohmann::json::parse(json));
  }

  asio::io_context ioc{1};
  std::string address;
  LiveCluster cluster;
  proxy::Config config;
  metrics::Registry registry;
  proxy::ProxyMetrics metrics;
  proxy::PreparedCache prepared;
  proxy::ControlConnection origin_cc, target_cc;
  proxy::SharedState shared;
  std::string client_addr = "127.0.0.1:40000";
  proxy::AsyncMirror mirror;
  std::shared_ptr<MirrorListener> listener;
  bool cc_done = false;
};

}  // namespace

TEST_CASE("AsyncMirror: STARTUP replayed, a mirrored read reaches the node and is only counted") {
  Mirror m({"127.34.2.20"});
  CHECK_FALSE(m.mirror.ready());
  CHECK(m.mirror.connector() == nullptr);
  m.start_ready();
  REQUIRE(m.mirror.connector());
  CHECK(m.mirror.connector()->role() == Connector::Role::kAsync);
  CHECK(m.mirror.connector()->cluster() == proxy::Cluster::kTarget);
  CHECK(m.node().connections->value() == 1);
  // The control connection and the async connector.
  CHECK(m.cluster.server.connection_count(0) == 2);

  m.send(7, query_frame(kRead, 44, cql::flag::kTracing));
  CHECK(m.node().inflight->value() == 1);
  CHECK(m.node().used_stream_ids->value() == 1);
  REQUIRE(run_until(m.ioc, [&] { return m.node().reads->count() == 1; }));
  // The node ran it: a traced request leaves its session in system_traces.
  CHECK(m.traces() == 1);
  // Its answer came back on the async connector's stream, not the client's 44, and went no
  // further than the mirror: nothing in flight, the stream id free, no failure counted.
  REQUIRE(m.listener->answers.size() == 1);
  CHECK(m.listener->answers[0].opcode == cql::Opcode::kResult);
  CHECK(m.listener->answers[0].stream != 44);
  CHECK(m.node().inflight->value() == 0);
  CHECK(m.node().used_stream_ids->value() == 0);
  for (const auto& [label, counter] : m.node().requests_failed) CHECK(counter->value() == 0);
  CHECK(m.node().failed_connections->value() == 0);
}

TEST_CASE("AsyncMirror: PasswordAuthenticator, the client's credentials are replayed") {
  Options o;
  o.server.authenticator = testcluster::Authenticator::kPassword;
  o.server.users = {{"alice", "secret"}};
  o.username = "alice";
  o.password = "secret";

  SUBCASE("right credentials: AUTH_SUCCESS, reads mirrored") {
    Mirror m({"127.34.2.21"}, o);
    m.start_ready({"alice", "secret"});
    CHECK(m.node().connections->value() == 1);
    m.send(1, query_frame(kRead, 44, cql::flag::kTracing));
    REQUIRE(run_until(m.ioc, [&] { return m.node().reads->count() == 1; }));
    CHECK(m.traces() == 1);
    CHECK(m.listener->answers.at(0).opcode == cql::Opcode::kResult);
  }
  SUBCASE("wrong password: mirroring off for this client, counted as a failed connection") {
    Mirror m({"127.34.2.22"}, o);
    m.start({"alice", "nope"});
    REQUIRE(run_until(m.ioc, [&] { return m.mirror.connector()->closed(); }));
    CHECK_FALSE(m.mirror.ready());
    CHECK(m.node().failed_connections->value() == 1);
    CHECK(m.node().connections->value() == 0);
    CHECK(m.listener->closed == 0);  // the replay never got to the read loop
  }
}

TEST_CASE("AsyncMirror: mirror() before mirroring is on sends nothing") {
  SUBCASE("after start(), before the node answered the replayed STARTUP") {
    Mirror m({"127.34.2.24"});
    m.start();
    m.send(1, query_frame(kRead, 44, cql::flag::kTracing));
    // The read must not overtake the STARTUP: the handshake completes and the read is gone.
    REQUIRE(run_until(m.ioc, [&] { return m.mirror.ready() || m.mirror.connector()->closed(); }));
    CHECK(m.mirror.ready());
    run_for(m.ioc, 100ms);
    CHECK(m.listener->answers.empty());
    CHECK(m.traces() == 0);
    CHECK(m.node().inflight->value() == 0);
    CHECK(m.node().used_stream_ids->value() == 0);
    CHECK(m.failed("other") == 0);
  }
  SUBCASE("before start()") {
    Mirror m({"127.34.2.23"});
    m.send(1, query_frame(kRead, 44));
    CHECK(m.mirror.connector() == nullptr);
    CHECK_FALSE(m.mirror.ready());
  }
}

TEST_CASE("AsyncMirror: bounded in-flight mirrored requests") {
  SUBCASE("beyond async_connector_write_queue_size_frames: dropped, counted as 'other'") {
    Options o;
    o.write_queue_frames = 2;
    Mirror m({"127.34.2.25"}, o);
    m.start_ready();
    m.faults(R"({"silence": {}})");
    for (uint64_t id = 1; id <= 3; ++id) m.send(id, query_frame(kRead, 44));
    CHECK(m.node().inflight->value() == 2);
    CHECK(m.node().used_stream_ids->value() == 2);
    CHECK(m.failed("other") == 1);
  }
  SUBCASE("no stream id free (proxy_max_stream_ids): dropped, not counted") {
    Options o;
    o.max_stream_ids = 2;
    Mirror m({"127.34.2.26"}, o);
    m.start_ready();
    m.faults(R"({"silence": {}})");
    for (uint64_t id = 1; id <= 3; ++id) m.send(id, query_frame(kRead, 44));
    CHECK(m.node().inflight->value() == 2);
    CHECK(m.node().used_stream_ids->value() == 2);
    CHECK(m.failed("other") == 0);
  }
}

TEST_CASE("AsyncMirror: sweep(deadline) forgets mirrored requests started before it") {
  Mirror m({"127.34.2.27"});
  m.start_ready();
  m.faults(R"({"latency": {"min_ms": 400, "max_ms": 400}})");
  const auto now = std::chrono::steady_clock::now();
  m.send(1, query_frame(kRead, 44), cql::Opcode::kQuery, now - 10s);
  m.send(2, query_frame(kRead, 45), cql::Opcode::kQuery, now);
  CHECK(m.node().inflight->value() == 2);

  m.mirror.sweep(now - 20s);  // both started after it
  CHECK(m.failed("client_timeout") == 0);
  CHECK(m.node().inflight->value() == 2);
  m.mirror.sweep(now - 5s);
  CHECK(m.failed("client_timeout") == 1);
  CHECK(m.node().inflight->value() == 1);

  // Both answers come (late): only the one not swept is counted; both stream ids are freed.
  REQUIRE(run_until(m.ioc, [&] { return m.listener->answers.size() == 2; }));
  CHECK(m.node().reads->count() == 1);
  CHECK(m.node().inflight->value() == 0);
  CHECK(m.node().used_stream_ids->value() == 0);
  CHECK(m.failed("client_timeout") == 1);
}

TEST_CASE("AsyncMirror: the node closing the async connection is reported") {
  Mirror m({"127.34.2.28"});
  m.start_ready();
  m.faults(R"({"silence": {}})");
  m.send(1, query_frame(kRead, 44));
  CHECK(m.node().connections->value() == 1);

  // The control connection's and the async connector's.
  CHECK(m.cluster.server.drop_connections(0) == 2);
  REQUIRE(run_until(m.ioc, [&] { return m.listener->closed > 0; }));
  run_for(m.ioc, 100ms);
  CHECK(m.listener->closed == 1);
  CHECK_FALSE(m.mirror.ready());
  CHECK(m.mirror.connector()->closed());
  CHECK(m.node().connections->value() == 0);
  // The request in flight is forgotten when the session closes (or at its sweep).
  CHECK(m.node().inflight->value() == 1);
  m.mirror.close();
  CHECK(m.node().inflight->value() == 0);
  CHECK(m.node().connections->value() == 0);
}

TEST_CASE("AsyncMirror: error answers are counted by their label") {
  SUBCASE("uncompressed") {
    Mirror m({"127.34.2.29"});
    m.start_ready();
    m.faults(R"({"error": {"type": "read_timeout", "statements": "reads"}})");
    m.send(1, query_frame(kRead, 44));
    REQUIRE(run_until(m.ioc, [&] { return m.node().reads->count() == 1; }));
    CHECK(m.listener->answers.at(0).opcode == cql::Opcode::kError);
    CHECK(m.failed("read_timeout") == 1);
    CHECK(m.failed("other") == 0);
  }
  SUBCASE("LZ4: the error is read from the compressed answer") {
    Mirror m({"127.34.2.30"});
    m.start_ready({}, cql::Compression::kLz4);
    m.faults(R"({"error": {"type": "read_timeout", "statements": "reads"}})");
    m.send(1, query_frame(kRead, 44));
    REQUIRE(run_until(m.ioc, [&] { return m.node().reads->count() == 1; }));
    CHECK((m.listener->answers.at(0).flags & cql::flag::kCompression) != 0);
    CHECK(m.failed("read_timeout") == 1);
  }
}

TEST_CASE("AsyncMirror: UNPREPARED on the secondary, one re-PREPARE and one retry") {
  // Nodes keep their own prepared statements: prepared on .31 (where the client's primary
  // would have), unknown on .32 (the mirror's node).
  Options o;
  o.prepared_per_node = true;
  Mirror m({"127.34.2.31", "127.34.2.32"}, o);
  testcluster::Session s;
  cql::PrepareMsg p;
  p.query = kRead;
  auto prepared = m.cluster.store.prepare(0, s, p);
  const cql::Bytes id =
      std::get<cql::PreparedResult>(std::get<cql::ResultMsg>(prepared.response).body).id;
  CHECK(m.cluster.store.prepared_count(1) == 0);
  cql::ExecuteMsg e;
  e.id = id;
  const cql::Bytes execute = cql::encode_message(4, false, 44, cql::Opcode::kExecute, e);
  auto put_in_cache = [&] {
    proxy::PreparedEntry entry;
    entry.origin_id = id;
    entry.target_id = id;
    entry.query = kRead;
    m.prepared.put(entry);
  };
  std::vector<cql::ResultKind> results;
  m.listener->on_answer = [&](const cql::Header& h, const cql::Bytes& f) {
    if (h.opcode == cql::Opcode::kResult) results.push_back(result_kind(f));
  };
  auto opcodes = [&] {
    std::vector<cql::Opcode> out;
    for (const auto& h : m.listener->answers) out.push_back(h.opcode);
    return out;
  };
  using cql::Opcode;
  using cql::ResultKind;

  SUBCASE("the statement is in the proxy's cache: PREPARE, then the EXECUTE again") {
    put_in_cache();
    m.start_ready();
    m.send(1, execute, Opcode::kExecute);
    REQUIRE(run_until(m.ioc, [&] { return m.node().reads->count() == 1; }));
    CHECK(opcodes() == std::vector<Opcode>{Opcode::kError, Opcode::kResult, Opcode::kResult});
    CHECK(results == std::vector<ResultKind>{ResultKind::kPrepared, ResultKind::kRows});
    CHECK(m.cluster.store.prepared_count(1) == 1);
    CHECK(m.failed("unprepared") == 0);
    CHECK(m.node().inflight->value() == 0);
    CHECK(m.node().used_stream_ids->value() == 0);
  }
  SUBCASE("UNPREPARED again after the re-PREPARE: no second one, counted as failed") {
    put_in_cache();
    // The node forgets the statement as soon as it has prepared it (a restart in between).
    m.listener->on_answer = [&](const cql::Header& h, const cql::Bytes& f) {
      if (h.opcode != Opcode::kResult) return;
      results.push_back(result_kind(f));
      if (results.back() == ResultKind::kPrepared) m.cluster.store.forget_prepared(1);
    };
    m.start_ready();
    m.send(1, execute, Opcode::kExecute);
    REQUIRE(run_until(m.ioc, [&] { return m.node().reads->count() == 1; }));
    run_for(m.ioc, 100ms);
    CHECK(opcodes() == std::vector<Opcode>{Opcode::kError, Opcode::kResult, Opcode::kError});
    CHECK(results == std::vector<ResultKind>{ResultKind::kPrepared});
    CHECK(m.failed("unprepared") == 1);
    CHECK(m.node().inflight->value() == 0);
    CHECK(m.node().used_stream_ids->value() == 0);
  }
  SUBCASE("the statement is not in the proxy's cache: no PREPARE, counted as failed") {
    m.start_ready();
    m.send(1, execute, Opcode::kExecute);
    REQUIRE(run_until(m.ioc, [&] { return m.node().reads->count() == 1; }));
    run_for(m.ioc, 100ms);
    CHECK(opcodes() == std::vector<Opcode>{Opcode::kError});
    CHECK(m.cluster.store.prepared_count(1) == 0);
    CHECK(m.failed("unprepared") == 1);
  }
}

TEST_CASE("AsyncMirror: a node that refuses the connection is counted as a failed connection") {
  Mirror m({"127.34.2.33"});
  m.cluster.server.stop_node(0);  // the control connection found it; now nothing listens
  m.start();
  REQUIRE(run_until(m.ioc, [&] { return m.mirror.connector()->closed(); }));
  CHECK_FALSE(m.mirror.ready());
  CHECK(m.node().connections->value() == 0);
  CHECK(m.node().failed_connections->value() == 1);
}

namespace {

/// What a client of the proxy receives.
class ClientRecorder final : public proxy::ConnectorListener {
 public:
  void on_cluster_frame(Connector&, cql::Header h, cql::Bytes frame) override {
    headers.push_back(h);
    frames.push_back(std::move(frame));
  }
  void on_connector_closed(Connector&) override { ++closed; }
  net::awaitable<void> client_writable() override { co_return; }

  std::vector<cql::Header> headers;
  std::vector<cql::Bytes> frames;
  int closed = 0;
};

}  // namespace

TEST_CASE("AsyncMirror in a ClientSession: the client gets the primary's answer only") {
  // Origin (primary) on .40, target (secondary) on .41, the proxy's client port on .42.
  asio::io_context ioc(1);
  LiveCluster origin(ioc, {"127.34.2.40"});
  LiveCluster target(ioc, {"127.34.2.41"});
  for (auto* c : {&origin, &target}) {
    c->run(
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
        "'replication_factor': 1}");
    c->run("CREATE TABLE ks.t (k int PRIMARY KEY, v text)");
  }
  origin.run("INSERT INTO ks.t (k, v) VALUES (1, 'from origin')");
  target.run("INSERT INTO ks.t (k, v) VALUES (1, 'from target')");

  proxy::Config config = make_config("127.34.2.41", Options{});
  config.origin_contact_points = {"127.34.2.40"};
  config.origin_enable_host_assignment = false;
  metrics::Registry registry;
  proxy::ProxyMetrics metrics(config, registry);
  proxy::PreparedCache prepared;
  proxy::ControlConnection origin_cc(ioc, config, proxy::Cluster::kOrigin, net::HopSettings{});
  proxy::ControlConnection target_cc(ioc, config, proxy::Cluster::kTarget, net::HopSettings{});
  proxy::VirtualTopology topology;
  topology.addresses = {"127.34.2.42"};
  proxy::SharedState shared(config, metrics, prepared, origin_cc, target_cc, topology, nullptr);
  int cc_done = 0;
  for (auto* cc : {&origin_cc, &target_cc})
    asio::co_spawn(ioc, cc->run(), [&](std::exception_ptr) { ++cc_done; });
  REQUIRE(run_until(ioc, [&] { return origin_cc.snapshot() && target_cc.snapshot(); }));

  // The proxy's side: one accepted client connection, one session.
  net::tcp::acceptor acceptor(ioc, endpoint("127.34.2.42"));
  bool session_done = false;
  acceptor.async_accept([&](net::error_code ec, net::tcp::socket socket) {
    REQUIRE_FALSE(ec);
    auto session = std::make_shared<proxy::ClientSession>(ioc, std::move(socket), shared);
    // The function object (and the shared_ptr it holds) lives as long as the coroutine.
    asio::co_spawn(
        ioc, [session] { return session->run(); },
        [&](std::exception_ptr) { session_done = true; });
  });

  // The client: a connection that hands every frame it receives to `client`.
  auto conn =
      std::make_shared<Connector>(ioc, Connector::Role::kOrigin, proxy::Cluster::kOrigin, 16);
  auto client = std::make_shared<ClientRecorder>();
  std::string why;
  const auto proxy_ep = endpoint("127.34.2.42");
  net::HopSettings hop;
  REQUIRE(run_coro<bool>(ioc, [&] { return conn->open(proxy_ep, "127.34.2.42", hop, why); }));
  net::HandshakeSettings hs;
  hs.timeout = 5000ms;
  auto shake = run_coro<net::HandshakeResult>(ioc, [&] { return conn->handshake(hs); });
  REQUIRE_MESSAGE(static_cast<bool>(shake), shake.why);
  asio::co_spawn(ioc, conn->read_loop(client, 32768), asio::detached);

  proxy::NodeMetrics& async = metrics.node("async", "127.34.2.41:9042");
  REQUIRE(run_until(ioc, [&] { return async.connections->value() == 1; }));
  conn->send(query_frame(kRead, 5, cql::flag::kTracing));
  REQUIRE(run_until(ioc, [&] { return async.reads->count() == 1 && !client->headers.empty(); }));
  run_for(ioc, 200ms);

  // Both clusters ran the read; one answer reached the client, origin's.
  CHECK(origin.count_rows("SELECT * FROM system_traces.sessions") == 1);
  CHECK(target.count_rows("SELECT * FROM system_traces.sessions") == 1);
  REQUIRE(client->headers.size() == 1);
  CHECK(client->headers[0].stream == 5);
  CHECK(client->headers[0].opcode == cql::Opcode::kResult);
  cql::Reader r(cql::BytesView(client->frames[0]).subspan(cql::kHeaderSize));
  cql::skip_response_prefix(r, client->headers[0].flags);
  auto result = cql::ResultMsg::decode(r, 4);
  const auto& rows = std::get<cql::RowsResult>(result.body).rows;
  REQUIRE(rows.size() == 1);
  REQUIRE(rows[0].at(0));
  CHECK(cql::to_string(*rows[0][0]) == "from origin");
  CHECK(async.inflight->value() == 0);

  conn->close();
  REQUIRE(run_until(ioc, [&] { return session_done; }));
  CHECK(async.connections->value() == 0);
  origin_cc.stop();
  target_cc.stop();
  origin.server.stop();
  target.server.stop();
  run_until(ioc, [&] { return cc_done == 2; });
  run_for(ioc, 50ms);
}
