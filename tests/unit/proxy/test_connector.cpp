// proxy::Connector: one connection to one cluster node, against zdm-testcluster's server run in
// this process (live_node.h) on 127.34.2.1-.19. Each case asserts what went over the socket: the
// frames the node answered, what the listener was told, and the connector's stream ids.
#include <doctest/doctest.h>

#include "proxy/connector.h"
#include "tests/unit/proxy/live_node.h"

using namespace zdm;
using namespace zdm::test;
using proxy::Connector;

namespace {

/// A ConnectorListener that writes down what it is told; client_writable() waits while the
/// "client" is not writable (`blocked`), as a session with a full client write queue does.
class Recorder final : public proxy::ConnectorListener {
 public:
  explicit Recorder(asio::io_context& ioc) : resume_(ioc) {
    resume_.expires_at(std::chrono::steady_clock::time_point::max());
  }
  void on_cluster_frame(Connector&, cql::Header h, cql::Bytes frame) override {
    headers.push_back(h);
    frames.push_back(std::move(frame));
  }
  void on_connector_closed(Connector&) override { ++closed; }
  net::awaitable<void> client_writable() override {
    while (blocked) {
      net::error_code ec;
      co_await resume_.async_wait(net::nothrow(ec));
    }
  }
  void unblock() {
    blocked = false;
    resume_.cancel();
  }

  std::vector<cql::Header> headers;
  std::vector<cql::Bytes> frames;
  int closed = 0;
  bool blocked = false;

 private:
  asio::steady_timer resume_;
};

std::shared_ptr<Connector> make_connector(asio::io_context& ioc, int max_stream_ids = 2048) {
  return std::make_shared<Connector>(ioc, Connector::Role::kOrigin, proxy::Cluster::kOrigin,
                                     max_stream_ids);
}

/// Opens `k` to `address`:9042; the error text in `why` when it fails.
bool open(asio::io_context& ioc, Connector& k, const std::string& address, std::string& why) {
  net::HopSettings hop;
  hop.connect_timeout = 5000ms;
  const auto ep = endpoint(address);  // open() keeps references: they must outlive it
  return run_coro<bool>(ioc, [&] { return k.open(ep, address, hop, why); });
}

/// Opens `k` to `address`, completes the CQL handshake (v4) and starts its read loop.
void open_and_read(asio::io_context& ioc, const std::shared_ptr<Connector>& k,
                   const std::string& address, const std::shared_ptr<Recorder>& listener) {
  std::string why;
  REQUIRE_MESSAGE(open(ioc, *k, address, why), why);
  net::HandshakeSettings s;
  s.timeout = 5000ms;
  auto shake = run_coro<net::HandshakeResult>(ioc, [&] { return k->handshake(s); });
  REQUIRE_MESSAGE(static_cast<bool>(shake), shake.why);
  k->listener = listener;
  asio::co_spawn(ioc, k->read_loop(listener, 32768), asio::detached);
}

/// Closes what is left and runs `ioc` until its coroutines have ended.
void finish(asio::io_context& ioc, LiveCluster* cluster, Connector& k) {
  k.close();
  if (cluster) cluster->server.stop();
  run_for(ioc, 100ms);
}

}  // namespace

TEST_CASE("Connector: open to a live node, OPTIONS answered by SUPPORTED") {
  asio::io_context ioc(1);
  LiveCluster cluster(ioc, {"127.34.2.1"});
  auto k = make_connector(ioc);
  std::string why;
  REQUIRE(open(ioc, *k, "127.34.2.1", why));
  CHECK(why.empty());
  CHECK(k->node() == "127.34.2.1:9042");
  CHECK_FALSE(k->closed());
  CHECK(k->role() == Connector::Role::kOrigin);
  CHECK(k->cluster() == proxy::Cluster::kOrigin);
  CHECK(run_until(ioc, [&] { return cluster.server.connection_count(0) == 1; }));

  auto answer = run_coro<std::optional<cql::Frame>>(ioc, [&] {
    return k->exchange(cql::encode_empty(4, false, 3, cql::Opcode::kOptions), 5000ms);
  });
  REQUIRE(answer);
  CHECK(answer->header.opcode == cql::Opcode::kSupported);
  CHECK(answer->header.stream == 3);
  CHECK(answer->header.response);
  cql::Reader r(answer->body);
  auto supported = cql::SupportedMsg::decode(r).options;
  REQUIRE(supported.count("CQL_VERSION") == 1);
  CHECK(supported.at("COMPRESSION") == std::vector<std::string>{"lz4", "snappy"});
  finish(ioc, &cluster, *k);
}

TEST_CASE("Connector: stream ids, lowest first, up to proxy_max_stream_ids") {
  asio::io_context ioc(1);
  proxy::Config config;
  metrics::Registry registry;
  proxy::ProxyMetrics m(config, registry);
  auto k = make_connector(ioc, 3);
  k->metrics = &m.node("origin", "127.34.2.2:9042");
  const metrics::Gauge& used = *k->metrics->used_stream_ids;
  CHECK(k->capacity() == 3);

  CHECK(k->acquire(101) == int16_t{0});
  CHECK(k->acquire(102) == int16_t{1});
  CHECK(k->acquire(103) == int16_t{2});
  CHECK(used.value() == 3);
  CHECK_FALSE(k->acquire(104));  // all three in use
  CHECK(used.value() == 3);

  CHECK(k->release(1) == 102);
  CHECK(used.value() == 2);
  CHECK(k->release(1) == 0);  // already free: nothing to give back, gauge unchanged
  CHECK(k->release(7) == 0);  // beyond the capacity
  CHECK(used.value() == 2);
  CHECK(k->acquire(105) == int16_t{1});  // the freed id is handed out again
  CHECK(k->release(0) == 101);
  CHECK(k->release(1) == 105);
  CHECK(k->release(2) == 103);
  CHECK(used.value() == 0);
}

TEST_CASE("Connector: a frame's answer reaches on_cluster_frame on its stream") {
  asio::io_context ioc(1);
  LiveCluster cluster(ioc, {"127.34.2.3"});
  auto k = make_connector(ioc);
  auto listener = std::make_shared<Recorder>(ioc);
  open_and_read(ioc, k, "127.34.2.3", listener);

  // Two requests in flight at once, each on the stream id the connector gave it.
  auto s1 = k->acquire(11);
  auto s2 = k->acquire(12);
  REQUIRE(s1);
  REQUIRE(s2);
  CHECK(*s1 != *s2);
  k->send(query_frame("SELECT cluster_name FROM system.local", *s1));
  k->send(cql::encode_empty(4, false, *s2, cql::Opcode::kOptions));
  REQUIRE(run_until(ioc, [&] { return listener->headers.size() == 2; }));

  std::map<int16_t, cql::Opcode> by_stream;
  for (const auto& h : listener->headers) {
    CHECK(h.response);
    by_stream[h.stream] = h.opcode;
  }
  CHECK(by_stream.at(*s1) == cql::Opcode::kResult);
  CHECK(by_stream.at(*s2) == cql::Opcode::kSupported);
  for (std::size_t i = 0; i < 2; ++i) {
    // The whole frame, header included, as the node wrote it.
    const auto& f = listener->frames[i];
    REQUIRE(f.size() >= cql::kHeaderSize);
    CHECK(f.size() == cql::kHeaderSize + listener->headers[i].length);
    CHECK(cql::frame_stream(f.data()) == listener->headers[i].stream);
  }
  const std::size_t rows = [&] {
    std::size_t i = listener->headers[0].stream == *s1 ? 0 : 1;
    cql::Reader r(cql::BytesView(listener->frames[i]).subspan(cql::kHeaderSize));
    auto result = cql::ResultMsg::decode(r, 4);
    return std::get<cql::RowsResult>(result.body).rows.size();
  }();
  CHECK(rows == 1);
  CHECK(k->release(*s1) == 11);
  CHECK(k->release(*s2) == 12);
  CHECK(listener->closed == 0);
  finish(ioc, &cluster, *k);
}

TEST_CASE("Connector: the node closing the connection is reported once") {
  asio::io_context ioc(1);
  LiveCluster cluster(ioc, {"127.34.2.4"});
  auto k = make_connector(ioc);
  auto listener = std::make_shared<Recorder>(ioc);
  open_and_read(ioc, k, "127.34.2.4", listener);
  REQUIRE(run_until(ioc, [&] { return cluster.server.connection_count(0) == 1; }));

  CHECK(cluster.server.drop_connections(0) == 1);
  REQUIRE(run_until(ioc, [&] { return listener->closed > 0; }));
  run_for(ioc, 200ms);
  CHECK(listener->closed == 1);
  CHECK(listener->headers.empty());
  finish(ioc, &cluster, *k);
  CHECK(listener->closed == 1);  // closing it ourselves afterwards reports nothing more
}

TEST_CASE("Connector: a corrupt frame from the node ends the read loop, reported once") {
  asio::io_context ioc(1);
  LiveCluster cluster(ioc, {"127.34.2.5"});
  auto k = make_connector(ioc);
  auto listener = std::make_shared<Recorder>(ioc);
  open_and_read(ioc, k, "127.34.2.5", listener);
  testcluster::merge_faults(cluster.server.faults(0),
                            nlohmann::json::parse(R"({"garbage": {"mode": "header"}})"));

  k->send(query_frame("SELECT cluster_name FROM system.local", *k->acquire(1)));
  REQUIRE(run_until(ioc, [&] { return listener->closed > 0; }));
  run_for(ioc, 100ms);
  CHECK(listener->closed == 1);
  CHECK(listener->headers.empty());  // the corrupt frame is not passed on
  finish(ioc, &cluster, *k);
}

TEST_CASE("Connector: a failed write is reported to its listener; close() is not") {
  asio::io_context ioc(1);
  LiveCluster cluster(ioc, {"127.34.2.6", "127.34.2.7"});
  auto listener = std::make_shared<Recorder>(ioc);

  SUBCASE("the node went away: writing fails") {
    auto k = make_connector(ioc);
    std::string why;
    REQUIRE(open(ioc, *k, "127.34.2.6", why));
    k->listener = listener;  // no read loop: only the writer can notice
    REQUIRE(run_until(ioc, [&] { return cluster.server.connection_count(0) == 1; }));
    cluster.server.drop_connections(0);
    // The first write after the node's FIN may still be accepted by the kernel; the node's
    // RST makes a later one fail.
    REQUIRE(run_until(ioc, [&] {
      if (listener->closed == 0) k->send(cql::encode_empty(4, false, 0, cql::Opcode::kOptions));
      run_for(ioc, 20ms);
      return listener->closed > 0;
    }));
    run_for(ioc, 100ms);
    CHECK(listener->closed == 1);
    finish(ioc, nullptr, *k);
  }
  SUBCASE("the proxy closes the connection itself: nothing is reported") {
    auto k = make_connector(ioc);
    std::string why;
    REQUIRE(open(ioc, *k, "127.34.2.7", why));
    k->listener = listener;
    k->send(cql::encode_empty(4, false, 0, cql::Opcode::kOptions));
    k->close();
    CHECK(k->closed());
    run_for(ioc, 200ms);
    CHECK(listener->closed == 0);
  }
  cluster.server.stop();
  run_for(ioc, 100ms);
}

TEST_CASE("Connector: open where nothing listens fails with the error's text") {
  asio::io_context ioc(1);
  // 127.34.2.8: no server in this process binds it.
  auto k = make_connector(ioc);
  std::string why;
  CHECK_FALSE(open(ioc, *k, "127.34.2.8", why));
  CHECK(why == "Connection refused");
  CHECK(k->closed());
  CHECK(k->node() == "127.34.2.8:9042");
}

TEST_CASE("Connector: the read loop waits while the client is not writable") {
  asio::io_context ioc(1);
  LiveCluster cluster(ioc, {"127.34.2.9"});
  auto k = make_connector(ioc);
  auto listener = std::make_shared<Recorder>(ioc);
  listener->blocked = true;
  open_and_read(ioc, k, "127.34.2.9", listener);

  k->send(cql::encode_empty(4, false, *k->acquire(1), cql::Opcode::kOptions));
  run_for(ioc, 300ms);
  CHECK(listener->headers.empty());  // the answer waits in the socket
  listener->unblock();
  REQUIRE(run_until(ioc, [&] { return listener->headers.size() == 1; }));
  CHECK(listener->headers[0].opcode == cql::Opcode::kSupported);
  finish(ioc, &cluster, *k);
}

TEST_CASE("Connector: writer watermarks, full() above the high mark, one call back at the low") {
  asio::io_context ioc(1);
  LiveCluster cluster(ioc, {"127.34.2.10"});
  auto k = make_connector(ioc);
  auto listener = std::make_shared<Recorder>(ioc);
  open_and_read(ioc, k, "127.34.2.10", listener);

  int low_calls = 0;
  // OPTIONS is a bare 9-byte header: two fit under the high mark, three do not.
  k->writer().set_watermarks(20, 0, [&] { ++low_calls; });
  k->send(cql::encode_empty(4, false, *k->acquire(1), cql::Opcode::kOptions));
  k->send(cql::encode_empty(4, false, *k->acquire(2), cql::Opcode::kOptions));
  CHECK(k->writer().queued_bytes() == 18);
  CHECK_FALSE(k->writer().full());
  k->send(cql::encode_empty(4, false, *k->acquire(3), cql::Opcode::kOptions));
  CHECK(k->writer().queued_bytes() == 27);
  CHECK(k->writer().full());

  REQUIRE(run_until(ioc, [&] { return listener->headers.size() == 3; }));
  CHECK_FALSE(k->writer().full());
  CHECK(k->writer().queued_bytes() == 0);
  CHECK(low_calls == 1);
  // Under the high mark all along: no second call.
  k->send(cql::encode_empty(4, false, *k->acquire(4), cql::Opcode::kOptions));
  REQUIRE(run_until(ioc, [&] { return listener->headers.size() == 4; }));
  CHECK(low_calls == 1);
  finish(ioc, &cluster, *k);
}
