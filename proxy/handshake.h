// The client handshake of one connection as a state machine (native_protocol_v4.spec §4.1.1
// STARTUP, §4.1.2 AUTH_RESPONSE, §4.1.4 OPTIONS, §4.2.2 READY, §4.2.3 AUTHENTICATE, §4.2.7
// AUTH_CHALLENGE, §4.2.8 AUTH_SUCCESS; §8 SASL) with ZDM's rules (datastax/zdm-proxy
// proxy/pkg/zdmproxy/clienthandler.go): STARTUP goes to both clusters; the client's SASL
// exchange goes to the "primary handshake" cluster; the other cluster, and the async connector's
// replay of the handshake, are authenticated by the proxy with the configured credentials.
// Pure: the session does the I/O and tells the machine what happened; the machine says what a
// frame means and which credentials go where.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/cql/frame.h"
#include "common/net/node_connection.h"
#include "proxy/config.h"

namespace zdm::proxy {

/// Where a connection's handshake is.
enum class HandshakeState : uint8_t {
  kStartup,         // nothing but OPTIONS yet: STARTUP expected
  kConnecting,      // STARTUP received: the clusters are being connected and started up
  kAuthenticating,  // the primary asked for SASL: the client's AUTH_RESPONSEs go to it
  kReady,           // READY or AUTH_SUCCESS reached the client: requests flow
};

/// What a client frame means before the handshake completes.
enum class HandshakeAction : uint8_t {
  kSupported,     // OPTIONS: answered with SUPPORTED (any time)
  kStartup,       // STARTUP: connect the clusters and start them up
  kAuthResponse,  // AUTH_RESPONSE: the next SASL step with the primary
  kRefuse,        // anything else: PROTOCOL_ERROR `error`, the connection stays
  kRequest,       // kReady: a request, routed to the clusters
};
struct HandshakeStep {
  HandshakeAction action = HandshakeAction::kRefuse;
  std::string error;  // kRefuse: the PROTOCOL_ERROR message
  bool operator==(const HandshakeStep&) const = default;
};

/// What the proxy does with the primary's answer to a SASL step.
enum class SaslAnswer : uint8_t {
  kFinish,   // AUTH_SUCCESS: authenticate the secondary, then AUTH_SUCCESS to the client
  kForward,  // AUTH_CHALLENGE (or another answer): to the client, the exchange goes on
  kFail,     // ERROR: to the client, then the connection closes
};
SaslAnswer sasl_answer(cql::Opcode primary_answer);

/// The verdict on a client frame's protocol version (native_protocol_v4.spec §2.1, §9).
struct VersionVerdict {
  bool accepted = true;
  bool unsupported = false;  // refused as a version the proxy or a cluster does not speak
  bool legacy = false;       // answer in a v1/v2 frame (8-byte header)
  uint8_t answer_version = 0;
  std::string message;  // the PROTOCOL_ERROR message when refused
  bool operator==(const VersionVerdict&) const = default;
};
/// Checks a client frame's version. `current`: the connection's version, 0 before its first
/// accepted frame; `blocked`: blocked_protocol_versions ("V5", "DSE_V1", ...); `origin_version`
/// and `target_version`: what the control connections negotiated (the ceiling). Refusals say
/// "Invalid or unsupported protocol version (N); the lowest supported version is 3 and the
/// greatest is M" (Cassandra 3's wording, which every driver parses), "Invalid frame: the
/// response bit is set on a request", or "Invalid message version. Got N but previous messages
/// on this connection had version M".
VersionVerdict check_version(const cql::Header& h, uint8_t current,
                             const std::vector<std::string>& blocked, uint8_t origin_version,
                             uint8_t target_version);
/// The PROTOCOL_ERROR message for STARTUP or AUTH_RESPONSE once the handshake is done:
/// "Unexpected message STARTUP, the connection is already initialized".
std::string unexpected_when_ready(cql::Opcode op);
/// True for the versions the proxy speaks: 3, 4, 5, DSE_V1 (0x41), DSE_V2 (0x42).
bool known_version(uint8_t v);
/// "4", "DSEV1".
std::string version_name(uint8_t v);

/// Who authenticates the client and with which credentials.
struct AuthPlan {
  Cluster primary = Cluster::kOrigin;  // the client's SASL exchange goes to this cluster
  Cluster client = Cluster::kTarget;   // the cluster whose credentials the client sends
  net::Credentials secondary;          // the other cluster's, used by the proxy
  net::Credentials async;              // the async connector's (the read mode's secondary)
  /// What the primary accepted (PLAIN: the client's, or the configured ones the proxy put in
  /// their place); empty when the client's exchange was not a PLAIN token. A connection that
  /// replaces a failed one is authenticated with it.
  net::Credentials primary_replay;
};

class Handshake {
 public:
  HandshakeState state() const { return state_; }
  bool ready() const { return state_ == HandshakeState::kReady; }

  /// What client frame `op` on `stream` means now. Pure.
  HandshakeStep step(cql::Opcode op, int16_t stream) const;

  /// STARTUP received (kStartup -> kConnecting): the auth plan from which clusters' control
  /// connections were asked to authenticate (router.h auth_roles()); the credentials configured
  /// for the other cluster and for the async connector. `startup`: the client's STARTUP frame,
  /// replayed on the async connector.
  void started(bool auth_origin, bool auth_target, const Config& config, cql::Bytes startup);
  /// The primary answered STARTUP with AUTHENTICATE (kConnecting -> kAuthenticating).
  void authenticating();
  /// READY or AUTH_SUCCESS went to the client (-> kReady).
  void completed();

  /// The client's AUTH_RESPONSE token (a SASL PLAIN token or another step's bytes; nullopt for
  /// a null token). Client credentials for the primary go to it unchanged (nullopt returned);
  /// credentials for the other cluster are kept for it, and the primary gets the configured
  /// credentials' token instead (returned). The async connector uses the client's credentials
  /// when they are the secondary's.
  std::optional<cql::Bytes> auth_response(const std::optional<cql::Bytes>& token,
                                          const Config& config);

  const AuthPlan& auth() const { return auth_; }
  /// The credentials that authenticate a new connection to `c` on this client's behalf
  /// (the handshake replayed on another node); nullopt when they are unknown (a SASL exchange
  /// other than PLAIN with the primary).
  std::optional<net::Credentials> replay_credentials(Cluster c) const;
  /// The client's STARTUP frame (empty before it).
  const cql::Bytes& startup_frame() const { return startup_; }
  /// The other cluster's authenticator class when it asked for SASL ("" when it did not).
  std::string secondary_authenticator;

 private:
  HandshakeState state_ = HandshakeState::kStartup;
  bool primary_asked_ = false;  // the primary answered STARTUP with AUTHENTICATE
  AuthPlan auth_;
  cql::Bytes startup_;
};

}  // namespace zdm::proxy
