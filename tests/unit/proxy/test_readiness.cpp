// Readiness that follows the clusters (issue 19) and the TLS mismatch a node's answer shows: the
// data-path evidence that makes a cluster stalled, the reasons the readiness JSON gives, what
// tells a TLS node from a plain one, and the advice naming the keys. The live cases run
// zdm-testcluster's server in this process on 127.34.2.50-.51 (live_node.h).
#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/error.hpp>
#include <initializer_list>

#include "common/net/node_connection.h"
#include "common/net/tls.h"
#include "proxy/connector.h"
#include "proxy/control_connection.h"
#include "proxy/proxy.h"
#include "tests/unit/proxy/live_node.h"

using namespace zdm;
using namespace zdm::proxy;
using namespace std::chrono_literals;

namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

boost::system::error_code ssl_error(int reason) {
  return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)),
          boost::asio::error::get_ssl_category()};
}

/// A TLS server context with a self-signed certificate made in memory (no file).
std::shared_ptr<net::ssl::context> self_signed_server() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key != nullptr);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("zdm test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  REQUIRE(SSL_CTX_use_certificate(ctx->native_handle(), cert) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey(ctx->native_handle(), key) == 1);
  X509_free(cert);
  EVP_PKEY_free(key);
  return ctx;
}

}  // namespace

TEST_CASE("a cluster is stalled while stuck requests are reported and no connection reads") {
  using Clock = DataPathEvidence::Clock;
  DataPathEvidence e;
  const auto t0 = Clock::now();
  CHECK(e.stalled(t0).empty());
  e.answered(t0);
  // One connection's requests wait, another read answers under a second ago: not stalled.
  e.stuck(3, t0 + 800ms);
  CHECK(e.stalled(t0 + 800ms).empty());
  // The reports of one round of sweeps add up.
  e.stuck(2, t0 + 1200ms);
  CHECK(e.stalled(t0 + 1600ms) ==
        "5 requests unanswered for over 1 s, and no request connection read anything for 1.6 s");
  // No report for over 1.5 s (those requests ended): no longer stalled.
  CHECK(e.stalled(t0 + 2800ms).empty());
  // A new round is counted afresh.
  e.stuck(1, t0 + 3s);
  CHECK(e.stalled(t0 + 3s) ==
        "1 request unanswered for over 1 s, and no request connection read anything for 3.0 s");
  // Any connection reading answers ends it at once.
  e.answered(t0 + 3500ms);
  e.stuck(4, t0 + 3600ms);
  CHECK(e.stalled(t0 + 3600ms).empty());
  CHECK_FALSE(e.stalled(t0 + 5100ms).empty());

  DataPathEvidence never;
  never.stuck(7, t0);
  CHECK(never.stalled(t0) ==
        "7 requests unanswered for over 1 s, and no request connection read anything since the "
        "proxy started");
}

TEST_CASE("rounds of sweeps from sessions out of step do not add up beyond one round") {
  using Clock = DataPathEvidence::Clock;
  DataPathEvidence e;
  const auto t0 = Clock::now();
  for (int round = 0; round < 5; ++round) {
    e.stuck(2, t0 + round * 1000ms);          // session A
    e.stuck(3, t0 + round * 1000ms + 500ms);  // session B, half a second later
  }
  CHECK(e.stalled(t0 + 4600ms).starts_with("5 requests unanswered"));
}

TEST_CASE("the readiness JSON says which cluster keeps the proxy from being ready, and why") {
  bool ready = true;
  ReadinessInput in;
  in.target.reason = "DOWN: 127.0.3.1:9042: Connection refused";
  CHECK(readiness_json(in, ready) ==
        R"({"OriginStatus":null,"TargetStatus":null,"Status":"STARTUP",)"
        R"("Reason":"TARGET DOWN: 127.0.3.1:9042: Connection refused"})");
  CHECK_FALSE(ready);
  in.started = true;
  in.origin = {"127.0.2.1:9042", 0, true, ""};
  in.target = {"127.0.3.1:9042", 0, false, "STALLED: 5 requests unanswered for over 1 s"};
  CHECK(
      readiness_json(in, ready) ==
      R"({"OriginStatus":{"Addr":"127.0.2.1:9042","CurrentFailureCount":0,"FailureCountThreshold":1,"Status":"UP"},)"
      R"("TargetStatus":{"Addr":"127.0.3.1:9042","CurrentFailureCount":0,"FailureCountThreshold":1,"Status":"DOWN",)"
      R"("Reason":"STALLED: 5 requests unanswered for over 1 s"},)"
      R"("Status":"DOWN","Reason":"TARGET STALLED: 5 requests unanswered for over 1 s"})");
  CHECK_FALSE(ready);
  in.origin = {"NOT_CONNECTED", 2, false, "DOWN: no answer to OPTIONS from 127.0.2.1:9042"};
  readiness_json(in, ready);
  CHECK(
      readiness_json(in, ready).find(
          R"("Reason":"ORIGIN DOWN: no answer to OPTIONS from 127.0.2.1:9042; TARGET STALLED: )") !=
      std::string::npos);
  // Up: ZDM's JSON, nothing added.
  in.origin = {"127.0.2.1:9042", 0, true, ""};
  in.target = {"127.0.3.1:9042", 0, true, ""};
  CHECK(readiness_json(in, ready).find("Reason") == std::string::npos);
  CHECK(ready);
}

TEST_CASE("the failures of one attempt are summarized, one line per kind") {
  CHECK(summarize_failures({}).empty());
  CHECK(summarize_failures({"127.0.3.1:9042: Connection refused"}) ==
        "127.0.3.1:9042: Connection refused");
  CHECK(summarize_failures({"127.0.3.1:9042: Connection refused",
                            "127.0.3.2:9042: timed out after 30000 ms",
                            "127.0.3.3:9042: Connection refused"}) ==
        "127.0.3.1:9042: Connection refused (the same for 127.0.3.3:9042); 127.0.3.2:9042: timed "
        "out after 30000 ms");
}

TEST_CASE("the first bytes a node answers tell TLS from plain CQL") {
  CHECK(net::looks_like_tls(bytes({0x16, 0x03, 0x03, 0x00, 0x7a})));              // ServerHello
  CHECK(net::looks_like_tls(bytes({0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46})));  // an alert
  CHECK_FALSE(net::looks_like_tls(bytes({0x84, 0x00, 0x00, 0x00, 0x06})));        // v4 SUPPORTED
  CHECK_FALSE(net::looks_like_tls(bytes({0x16})));
  CHECK_FALSE(net::looks_like_tls({}));
  CHECK_FALSE(net::looks_like_tls(bytes({0x17, 0x03, 0x03})));  // application data comes later
  CHECK(net::looks_like_cql_response(bytes({0x84, 0x00, 0x00, 0x00, 0x00})));
  CHECK(net::looks_like_cql_response(bytes({0x85})));
  CHECK(net::looks_like_cql_response(bytes({0xc2})));        // DSE_V2
  CHECK_FALSE(net::looks_like_cql_response(bytes({0x04})));  // a request
  CHECK_FALSE(net::looks_like_cql_response(bytes({0x86})));  // no such version
  CHECK_FALSE(net::looks_like_cql_response(bytes({0x16, 0x03})));
  const auto hello = net::client_hello();
  REQUIRE(hello.size() > 40);
  CHECK(net::looks_like_tls(hello));           // a handshake record too
  CHECK(std::to_integer<int>(hello[5]) == 1);  // ClientHello
  CHECK_FALSE(net::looks_like_cql_response(hello));
}

TEST_CASE("TLS handshake errors that mean the node does not speak TLS") {
  CHECK(net::tls_error_means_plain_peer(ssl_error(SSL_R_WRONG_VERSION_NUMBER)));
  CHECK(net::tls_error_means_plain_peer(ssl_error(SSL_R_PACKET_LENGTH_TOO_LONG)));
  CHECK(net::tls_error_means_plain_peer(ssl_error(SSL_R_UNKNOWN_PROTOCOL)));
  CHECK_FALSE(net::tls_error_means_plain_peer(ssl_error(SSL_R_CERTIFICATE_VERIFY_FAILED)));
  CHECK_FALSE(net::tls_error_means_plain_peer(ssl_error(SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)));
  CHECK_FALSE(net::tls_error_means_plain_peer(boost::asio::error::connection_refused));
  CHECK_FALSE(net::tls_error_means_plain_peer(boost::asio::ssl::error::stream_truncated));
  CHECK(net::tls_error_ambiguous(boost::asio::ssl::error::stream_truncated));
  CHECK(net::tls_error_ambiguous(boost::asio::error::eof));
  CHECK(net::tls_error_ambiguous(ssl_error(SSL_R_UNEXPECTED_EOF_WHILE_READING)));
  CHECK_FALSE(net::tls_error_ambiguous(ssl_error(SSL_R_WRONG_VERSION_NUMBER)));
  CHECK_FALSE(net::tls_error_ambiguous(ssl_error(SSL_R_CERTIFICATE_VERIFY_FAILED)));
}

TEST_CASE("the advice for a TLS mismatch names the node and the keys") {
  CHECK(tls_mismatch_advice(Cluster::kTarget, "127.0.3.1:9042", net::TlsMismatch::kNodeWantsTls) ==
        "TARGET node 127.0.3.1:9042 answered with TLS: set target_tls_server_ca_path (and "
        "target_tls_client_cert_path, target_tls_client_key_path for mutual TLS) in the proxy "
        "configuration");
  CHECK(tls_mismatch_advice(Cluster::kOrigin, "127.0.2.1:9042", net::TlsMismatch::kNodeNotTls) ==
        "ORIGIN node 127.0.2.1:9042 does not speak TLS (it answered the TLS handshake in plain "
        "CQL): remove origin_tls_server_ca_path, origin_tls_client_cert_path and "
        "origin_tls_client_key_path from the proxy configuration, or turn on client encryption "
        "on the node");
  CHECK(tls_mismatch_advice(Cluster::kOrigin, "x", net::TlsMismatch::kNone).empty());
}

TEST_CASE("a plain node dialled with TLS: the connector says it does not speak TLS") {
  asio::io_context ioc;
  test::LiveCluster cluster(ioc, {"127.34.2.50"});
  const auto ep = test::endpoint("127.34.2.50");
  net::HopSettings hop;
  hop.connect_timeout = 5000ms;
  hop.verify_hostname = false;
  hop.tls = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
  hop.tls->set_verify_mode(net::ssl::verify_none);
  auto k = std::make_shared<Connector>(ioc, Connector::Role::kTarget, Cluster::kTarget, 128);
  std::string why;
  const std::string host = "127.34.2.50";
  CHECK_FALSE(test::run_coro<bool>(ioc, [&] { return k->open(ep, host, hop, why); }));
  CHECK(
      why.starts_with("TLS handshake: wrong version number; TARGET node 127.34.2.50:9042 does "
                      "not speak TLS"));
  // The probes: a plain OPTIONS is answered in CQL, a ClientHello not with TLS.
  auto cql_answer = test::run_coro<std::vector<std::byte>>(ioc, [&] {
    return net::first_answer(ioc, ep, cql::encode_empty(4, false, 0, cql::Opcode::kOptions),
                             2000ms);
  });
  CHECK(net::looks_like_cql_response(cql_answer));
  auto hello_answer = test::run_coro<std::vector<std::byte>>(
      ioc, [&] { return net::first_answer(ioc, ep, net::client_hello(), 2000ms); });
  CHECK_FALSE(net::looks_like_tls(hello_answer));
  // Dialled in plain CQL, nothing is amiss.
  auto plain = std::make_shared<net::NodeConnection>(ioc);
  net::HopSettings none;
  none.connect_timeout = 5000ms;
  REQUIRE(test::run_coro<bool>(ioc, [&] { return plain->open(ep, host, none, why); }));
  CHECK(test::run_coro<net::TlsMismatch>(
            ioc, [&] { return plain->diagnose_tls(ep, none, 2000ms); }) == net::TlsMismatch::kNone);
  plain->close();
}

TEST_CASE("a TLS-only node dialled in plain CQL: closed at OPTIONS, diagnosed as wanting TLS") {
  asio::io_context ioc;
  testcluster::ServerOptions options;
  options.tls = self_signed_server();
  test::LiveCluster cluster(ioc, {"127.34.2.51"}, options);
  const auto ep = test::endpoint("127.34.2.51");
  net::HopSettings hop;
  hop.connect_timeout = 5000ms;
  auto conn = std::make_shared<net::NodeConnection>(ioc);
  std::string why;
  const std::string host = "127.34.2.51";
  REQUIRE(test::run_coro<bool>(ioc, [&] { return conn->open(ep, host, hop, why); }));
  net::HandshakeSettings settings;
  settings.ask_options = true;
  settings.timeout = 3000ms;
  auto shake = test::run_coro<net::HandshakeResult>(ioc, [&] { return conn->handshake(settings); });
  CHECK(shake.failure == net::HandshakeResult::Failure::kClosed);
  CHECK(std::string(shake.step) == "OPTIONS");
  CHECK(test::run_coro<net::TlsMismatch>(ioc, [&] {
          return conn->diagnose_tls(ep, hop, 2000ms);
        }) == net::TlsMismatch::kNodeWantsTls);
  auto hello_answer = test::run_coro<std::vector<std::byte>>(
      ioc, [&] { return net::first_answer(ioc, ep, net::client_hello(), 2000ms); });
  CHECK(net::looks_like_tls(hello_answer));
  conn->close();
}
