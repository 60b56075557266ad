// net::NodeConnection::handshake(), the one CQL client handshake of the proxy's control
// connection and zdm-data, against zdm-testcluster's server run in this process on 127.34.1.x
// (its own addresses: no other test uses 127.34). Each case asserts what the node answered and
// how the handshake says it ended.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "common/net/node_connection.h"
#include "testcluster/server.h"
#include "testcluster/store.h"

using namespace zdm;
using Failure = net::HandshakeResult::Failure;

namespace {

/// One stand-in node on `address`:9042 with `options`, and a handshake to it with `settings`.
net::HandshakeResult handshake_with(const std::string& address, testcluster::ServerOptions options,
                                    net::HandshakeSettings settings,
                                    uint8_t* negotiated = nullptr) {
  boost::asio::io_context ioc(1);
  testcluster::ClusterInfo info;
  info.nodes = testcluster::make_nodes({address});
  testcluster::Store store(info);
  options.port = 9042;
  testcluster::Server server(ioc, store, std::move(options));
  server.start();
  auto conn = std::make_shared<net::NodeConnection>(ioc);
  auto done = boost::asio::co_spawn(
      ioc,
      [&]() -> net::awaitable<net::HandshakeResult> {
        std::string why;
        net::tcp::endpoint ep(boost::asio::ip::make_address(address), 9042);
        if (!co_await conn->open(ep, address, net::HopSettings{}, why)) {
          net::HandshakeResult r;
          r.failure = Failure::kClosed;
          r.why = "open: " + why;
          co_return r;
        }
        auto r = co_await conn->handshake(settings);
        if (negotiated) *negotiated = conn->version();
        conn->close();
        server.stop();
        co_return r;
      },
      boost::asio::use_future);
  ioc.run();
  return done.get();
}

net::HandshakeSettings settings(uint8_t version, net::Credentials creds = {},
                                bool ask_options = false,
                                cql::Compression compression = cql::Compression::kNone) {
  net::HandshakeSettings s;
  s.version = version;
  s.credentials = std::move(creds);
  s.ask_options = ask_options;
  s.compression = compression;
  s.timeout = std::chrono::seconds(5);
  return s;
}

}  // namespace

TEST_CASE("NodeConnection::handshake") {
  SUBCASE("no authenticator: OPTIONS gives SUPPORTED, STARTUP gives READY") {
    auto r = handshake_with("127.34.1.1", {}, settings(4, {}, true));
    CHECK(r.failure == Failure::kNone);
    CHECK(static_cast<bool>(r));
    CHECK(r.authenticator.empty());
    REQUIRE(r.supported.count("COMPRESSION") == 1);
    CHECK(r.supported.at("COMPRESSION") == std::vector<std::string>{"lz4", "snappy"});
  }
  SUBCASE("PasswordAuthenticator with the right credentials: AUTH_SUCCESS") {
    testcluster::ServerOptions o;
    o.authenticator = testcluster::Authenticator::kPassword;
    o.users = {{"alice", "secret"}};
    auto r = handshake_with("127.34.1.2", o, settings(4, {"alice", "secret"}));
    CHECK(r.failure == Failure::kNone);
    CHECK(r.authenticator == "org.apache.cassandra.auth.PasswordAuthenticator");
  }
  SUBCASE("PasswordAuthenticator with a wrong password: the node's own words") {
    testcluster::ServerOptions o;
    o.authenticator = testcluster::Authenticator::kPassword;
    o.users = {{"alice", "secret"}};
    auto r = handshake_with("127.34.1.3", o, settings(4, {"alice", "nope"}));
    CHECK(r.failure == Failure::kAuthRefused);
    CHECK(std::string(r.step) == "AUTH_RESPONSE");
    CHECK(r.error == cql::ErrorCode::kAuthenticationError);
    CHECK(r.message == "Provided username alice and/or password are incorrect");
    CHECK(r.why ==
          "the credentials of user 'alice' were refused: Provided username alice and/or "
          "password are incorrect");
  }
  SUBCASE("authentication asked but no credentials: refused before any AUTH_RESPONSE") {
    testcluster::ServerOptions o;
    o.authenticator = testcluster::Authenticator::kPassword;
    o.users = {{"alice", "secret"}};
    auto r = handshake_with("127.34.1.4", o, settings(4));
    CHECK(r.failure == Failure::kNoCredentials);
    CHECK(r.authenticator == "org.apache.cassandra.auth.PasswordAuthenticator");
  }
  SUBCASE("DseAuthenticator: PLAIN, then the token") {
    testcluster::ServerOptions o;
    o.authenticator = testcluster::Authenticator::kDse;
    o.users = {{"bob", "pw"}};
    auto r = handshake_with("127.34.1.5", o, settings(4, {"bob", "pw"}));
    CHECK(r.failure == Failure::kNone);
    CHECK(r.authenticator == net::kDseAuthenticator);
  }
  SUBCASE("a version the node does not speak: PROTOCOL_ERROR, so the caller retries lower") {
    testcluster::ServerOptions o;
    o.versions = {3, 4};
    auto r = handshake_with("127.34.1.6", o, settings(5, {}, true));
    CHECK(r.failure == Failure::kVersionRefused);
    CHECK(std::string(r.step) == "OPTIONS");
    CHECK(r.error == cql::ErrorCode::kProtocolError);
    CHECK(r.why.starts_with("OPTIONS refused: Invalid or unsupported protocol version (5)"));
  }
  SUBCASE("v5 with LZ4: segments after READY, compression kept") {
    uint8_t version = 0;
    auto r =
        handshake_with("127.34.1.7", {}, settings(5, {}, false, cql::Compression::kLz4), &version);
    CHECK(r.failure == Failure::kNone);
    CHECK(version == 5);
  }
  SUBCASE("v5 with Snappy: no compression asked (v5 segments compress with LZ4 only)") {
    auto r = handshake_with("127.34.1.8", {}, settings(5, {}, false, cql::Compression::kSnappy));
    CHECK(r.failure == Failure::kNone);
  }
}

TEST_CASE("cql::error_text") {
  cql::Frame f;
  f.header = cql::decode_header(cql::encode_error(4, 3, cql::ErrorCode::kUnavailable, "two down"));
  auto full = cql::encode_error(4, 3, cql::ErrorCode::kUnavailable, "two down");
  f.body.assign(full.begin() + cql::kHeaderSize, full.end());
  cql::ErrorCode code = cql::ErrorCode::kServerError;
  CHECK(cql::error_text(f, &code) == "two down");
  CHECK(code == cql::ErrorCode::kUnavailable);
  f.body.resize(3);  // the [int] code cut short
  code = cql::ErrorCode::kServerError;
  CHECK(cql::error_text(f, &code).starts_with("unreadable ERROR: "));
  CHECK(code == cql::ErrorCode::kServerError);
}
