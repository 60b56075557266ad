#include <doctest/doctest.h>

#include "proxy/handshake.h"

using namespace zdm;
using namespace zdm::proxy;
using cql::Opcode;
using HS = HandshakeState;
using HA = HandshakeAction;

namespace {

Handshake in_state(HS s) {
  Config config;
  Handshake h;
  if (s == HS::kStartup) return h;
  h.started(false, false, config, {});
  if (s == HS::kAuthenticating) h.authenticating();
  if (s == HS::kReady) h.completed();
  return h;
}

cql::Header header(uint8_t version, bool response = false) {
  return cql::Header{version, response, 0, 1, Opcode::kOptions, 0};
}

}  // namespace

TEST_CASE("handshake: what a client frame means in each state") {
  struct Row {
    HS state;
    Opcode op;
    int16_t stream;
    HandshakeStep want;
  };
  const std::string not_startup = ", expecting STARTUP or OPTIONS";
  const Row rows[] = {
      {HS::kStartup, Opcode::kOptions, 0, {HA::kSupported, ""}},
      {HS::kStartup, Opcode::kStartup, 0, {HA::kStartup, ""}},
      {HS::kStartup,
       Opcode::kAuthResponse,
       0,
       {HA::kRefuse, "Unexpected message AUTH_RESPONSE" + not_startup}},
      {HS::kStartup, Opcode::kQuery, 3, {HA::kRefuse, "Unexpected message QUERY" + not_startup}},
      {HS::kStartup,
       Opcode::kStartup,
       -1,
       {HA::kRefuse, "Invalid stream id -1: client requests must use non-negative stream ids"}},
      {HS::kConnecting, Opcode::kOptions, 0, {HA::kSupported, ""}},
      {HS::kConnecting,
       Opcode::kStartup,
       0,
       {HA::kRefuse, "Unexpected message STARTUP" + not_startup}},
      {HS::kAuthenticating, Opcode::kAuthResponse, 0, {HA::kAuthResponse, ""}},
      {HS::kAuthenticating, Opcode::kOptions, 0, {HA::kSupported, ""}},
      {HS::kAuthenticating,
       Opcode::kStartup,
       0,
       {HA::kRefuse, "Unexpected message STARTUP, expecting SASL_RESPONSE"}},
      {HS::kAuthenticating,
       Opcode::kQuery,
       0,
       {HA::kRefuse, "Unexpected message QUERY, expecting SASL_RESPONSE"}},
      {HS::kReady, Opcode::kQuery, 0, {HA::kRequest, ""}},
      {HS::kReady, Opcode::kOptions, 0, {HA::kSupported, ""}},
      {HS::kReady,
       Opcode::kStartup,
       0,
       {HA::kRefuse, "Unexpected message STARTUP, the connection is already initialized"}},
      {HS::kReady,
       Opcode::kAuthResponse,
       0,
       {HA::kRefuse, "Unexpected message AUTH_RESPONSE, the connection is already initialized"}},
  };
  for (const Row& row : rows) {
    CAPTURE(static_cast<int>(row.state));
    CAPTURE(cql::opcode_name(row.op));
    CHECK(in_state(row.state).step(row.op, row.stream) == row.want);
  }
}

TEST_CASE("handshake: transitions") {
  Config config;
  Handshake h;
  CHECK(h.state() == HS::kStartup);
  CHECK_THROWS_AS(h.authenticating(), std::logic_error);
  CHECK_THROWS_AS(h.completed(), std::logic_error);
  h.started(true, true, config, cql::Bytes(9));
  CHECK(h.state() == HS::kConnecting);
  CHECK(h.startup_frame().size() == 9);
  CHECK_THROWS_AS(h.started(true, true, config, {}), std::logic_error);
  h.authenticating();
  CHECK(h.state() == HS::kAuthenticating);
  CHECK(!h.ready());
  h.completed();
  CHECK(h.ready());
  SUBCASE("no SASL: STARTUP answered READY") {
    Handshake n;
    n.started(false, false, config, {});
    n.completed();
    CHECK(n.state() == HS::kReady);
  }
}

TEST_CASE("handshake: the primary's answer to a SASL step") {
  CHECK(sasl_answer(Opcode::kAuthSuccess) == SaslAnswer::kFinish);
  CHECK(sasl_answer(Opcode::kAuthChallenge) == SaslAnswer::kForward);
  CHECK(sasl_answer(Opcode::kError) == SaslAnswer::kFail);
}

TEST_CASE("handshake: protocol versions") {
  const std::vector<std::string> none;
  SUBCASE("the first frame sets the connection's version; later frames must match") {
    CHECK(check_version(header(4), 0, none, 4, 4) == VersionVerdict{});
    CHECK(check_version(header(4), 4, none, 4, 4) == VersionVerdict{});
    CHECK(check_version(header(3), 4, none, 4, 4) ==
          VersionVerdict{false, false, false, 4,
                         "Invalid message version. Got 3 but previous messages on this connection "
                         "had version 4"});
  }
  SUBCASE("above what both clusters speak: refused with the greatest both speak") {
    CHECK(check_version(header(5), 0, none, 5, 4) ==
          VersionVerdict{false, true, false, 5,
                         "Invalid or unsupported protocol version (5); the lowest supported "
                         "version is 3 and the greatest is 4"});
    CHECK(check_version(header(0x41), 0, none, 0x42, 5).accepted == false);
    CHECK(check_version(header(0x41), 0, none, 0x42, 0x41).accepted);
  }
  SUBCASE("unknown versions: answered in the greatest; v1/v2 in their own framing") {
    VersionVerdict v6 = check_version(header(6), 0, none, 5, 5);
    CHECK(v6 == VersionVerdict{false, true, false, 5,
                               "Invalid or unsupported protocol version (6); the lowest "
                               "supported version is 3 and the greatest is 5"});
    VersionVerdict v2 = check_version(header(2), 0, none, 4, 4);
    CHECK(!v2.accepted);
    CHECK(v2.legacy);
    CHECK(v2.answer_version == 2);
  }
  SUBCASE("blocked_protocol_versions, spelled any way") {
    for (std::string b : {"V5", "v5", "5"}) {
      CAPTURE(b);
      CHECK(!check_version(header(5), 0, {b}, 5, 5).accepted);
    }
    CHECK(!check_version(header(0x41), 0, {"DSE_V1"}, 0x42, 0x42).accepted);
    CHECK(check_version(header(4), 0, {"DSE_V1", "V5"}, 0x42, 0x42).accepted);
  }
  SUBCASE("the response bit on a request") {
    CHECK(check_version(header(4, true), 0, none, 4, 4) ==
          VersionVerdict{false, false, false, 4,
                         "Invalid frame: the response bit is set on a request"});
  }
  CHECK(version_name(0x42) == "DSEV2");
  CHECK(version_name(4) == "4");
}

TEST_CASE("handshake: auth roles and credentials") {
  Config config;
  config.origin_username = "o-user";
  config.origin_password = "o-pass";
  config.target_username = "t-user";
  config.target_password = "t-pass";
  const net::Credentials client{"client", "secret"};
  struct Row {
    bool auth_origin, auth_target, forward_to_origin;
    Cluster primary_cluster;  // config.primary_cluster (the async connector's secondary)
    Cluster primary, client;  // want: the SASL exchange's cluster, whose credentials the client has
    bool token_replaced;      // the primary gets the configured credentials, not the client's
    std::string secondary_user, async_user;  // after the client's AUTH_RESPONSE
  };
  const Row rows[] = {
      // Auth on both: origin hears the client, who has target's credentials.
      {true, true, false, Cluster::kOrigin, Cluster::kOrigin, Cluster::kTarget, true, "client",
       "client"},
      // ... unless forward_client_credentials_to_origin: the client has origin's.
      {true, true, true, Cluster::kOrigin, Cluster::kOrigin, Cluster::kOrigin, false, "t-user",
       "t-user"},
      // Auth on origin only: origin hears the client with its own credentials.
      {true, false, false, Cluster::kOrigin, Cluster::kOrigin, Cluster::kOrigin, false, "t-user",
       "t-user"},
      // Auth on target only: target hears the client.
      {false, true, false, Cluster::kOrigin, Cluster::kTarget, Cluster::kTarget, false, "o-user",
       "client"},
      // Reads from target: the async connector (to origin) uses origin's configured ones.
      {true, true, false, Cluster::kTarget, Cluster::kOrigin, Cluster::kTarget, true, "client",
       "o-user"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.auth_origin);
    CAPTURE(row.auth_target);
    CAPTURE(row.forward_to_origin);
    config.forward_client_credentials_to_origin = row.forward_to_origin;
    config.primary_cluster = row.primary_cluster;
    Handshake h;
    h.started(row.auth_origin, row.auth_target, config, {});
    CHECK(h.auth().primary == row.primary);
    CHECK(h.auth().client == row.client);
    h.authenticating();
    auto out = h.auth_response(client.token(), config);
    CHECK(out.has_value() == row.token_replaced);
    if (out) {
      auto sent = net::Credentials::parse(*out);
      REQUIRE(sent);
      CHECK(sent->username == config.username(row.primary));
      CHECK(sent->password == config.password(row.primary));
    }
    CHECK(h.auth().secondary.username == row.secondary_user);
    CHECK(h.auth().async.username == row.async_user);
    // A replacement connection to either cluster authenticates as that cluster accepted.
    auto primary_replay = h.replay_credentials(row.primary);
    REQUIRE(primary_replay);
    CHECK(primary_replay->username ==
          (row.token_replaced ? config.username(row.primary) : std::string("client")));
    auto secondary_replay = h.replay_credentials(other(row.primary));
    REQUIRE(secondary_replay);
    CHECK(secondary_replay->username == row.secondary_user);
  }
  SUBCASE("a primary that asked for no authentication needs none on a replacement connection") {
    Handshake h;
    h.started(false, true, config, {});
    h.completed();
    auto replay = h.replay_credentials(h.auth().primary);
    REQUIRE(replay);
    CHECK(replay->empty());
  }
  SUBCASE("a SASL step that is not a PLAIN token goes to the primary as it is") {
    config.primary_cluster = Cluster::kOrigin;
    config.forward_client_credentials_to_origin = false;
    Handshake h;
    h.started(true, true, config, {});
    h.authenticating();
    CHECK(!h.auth_response(cql::to_bytes("PLAIN"), config));
    CHECK(!h.auth_response(std::nullopt, config));
    // Target's configured credentials stay the secondary's: nothing to take from the client.
    CHECK(h.auth().secondary.username == "t-user");
    // Not a PLAIN token: the handshake cannot be replayed on another origin node.
    CHECK(!h.replay_credentials(Cluster::kOrigin));
  }
}
