#include "proxy/handshake.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "proxy/router.h"

namespace zdm::proxy {

namespace {

// Order of versions for negotiation (DSE_V2 > DSE_V1 > 5 > 4 > 3), as the drivers walk them.
int version_rank(uint8_t v) {
  switch (v) {
    case 0x42:
      return 7;
    case 0x41:
      return 6;
    default:
      return v;
  }
}

}  // namespace

bool known_version(uint8_t v) {
  return v == 3 || v == 4 || v == 5 || v == 0x41 || v == 0x42;
}

std::string version_name(uint8_t v) {
  switch (v) {
    case 0x41:
      return "DSEV1";
    case 0x42:
      return "DSEV2";
    default:
      return std::to_string(v);
  }
}

VersionVerdict check_version(const cql::Header& h, uint8_t current,
                             const std::vector<std::string>& blocked, uint8_t origin_version,
                             uint8_t target_version) {
  VersionVerdict v;
  // The connection's version passed the checks below at its first frame: every later request
  // costs one comparison.
  if (current != 0 && h.version == current && !h.response) return v;
  bool is_blocked = false;
  for (const auto& b : blocked) {
    std::string u;
    for (char ch : b)
      if (ch != '_') u += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (u == version_name(h.version) || u == "V" + version_name(h.version)) is_blocked = true;
  }
  // Versions above what both control connections negotiated cannot work on both clusters.
  const int ceiling = std::min(version_rank(origin_version), version_rank(target_version));
  if (!known_version(h.version) || is_blocked || version_rank(h.version) > ceiling) {
    // Answered in a version the client can read (v1/v2 headers are 8 bytes), then closed: the
    // driver retries with a lower version on a new connection. gocql reads "the greatest is N".
    uint8_t greatest = 3;
    for (uint8_t g : {3, 4, 5})
      if (version_rank(g) <= ceiling) greatest = g;
    v.accepted = false;
    v.unsupported = true;
    v.message = "Invalid or unsupported protocol version (" + std::to_string(h.version) +
                "); the lowest supported version is 3 and the greatest is " +
                std::to_string(greatest);
    v.legacy = h.version == 1 || h.version == 2;
    v.answer_version = v.legacy || known_version(h.version) ? h.version : greatest;
    return v;
  }
  if (h.response) {
    v.accepted = false;
    v.answer_version = h.version;
    v.message = "Invalid frame: the response bit is set on a request";
    return v;
  }
  if (current != 0 && h.version != current) {
    v.accepted = false;
    v.answer_version = current;
    v.message = "Invalid message version. Got " + std::to_string(h.version) +
                " but previous messages on this connection had version " + std::to_string(current);
  }
  return v;
}

std::string unexpected_when_ready(cql::Opcode op) {
  return "Unexpected message " + cql::opcode_name(op) + ", the connection is already initialized";
}

SaslAnswer sasl_answer(cql::Opcode primary_answer) {
  switch (primary_answer) {
    case cql::Opcode::kAuthSuccess:
      return SaslAnswer::kFinish;
    case cql::Opcode::kError:
      return SaslAnswer::kFail;
    default:
      return SaslAnswer::kForward;
  }
}

HandshakeStep Handshake::step(cql::Opcode op, int16_t stream) const {
  if (stream < 0)
    return {HandshakeAction::kRefuse, "Invalid stream id " + std::to_string(stream) +
                                          ": client requests must use non-negative stream ids"};
  if (op == cql::Opcode::kOptions) return {HandshakeAction::kSupported, {}};
  if (state_ == HandshakeState::kReady) {
    if (op == cql::Opcode::kStartup || op == cql::Opcode::kAuthResponse)
      return {HandshakeAction::kRefuse, unexpected_when_ready(op)};
    return {HandshakeAction::kRequest, {}};
  }
  if (op == cql::Opcode::kStartup && state_ == HandshakeState::kStartup)
    return {HandshakeAction::kStartup, {}};
  if (op == cql::Opcode::kAuthResponse && state_ == HandshakeState::kAuthenticating)
    return {HandshakeAction::kAuthResponse, {}};
  return {HandshakeAction::kRefuse,
          "Unexpected message " + cql::opcode_name(op) +
              (state_ == HandshakeState::kAuthenticating ? ", expecting SASL_RESPONSE"
                                                         : ", expecting STARTUP or OPTIONS")};
}

void Handshake::started(bool auth_origin, bool auth_target, const Config& config,
                        cql::Bytes startup) {
  if (state_ != HandshakeState::kStartup) throw std::logic_error("STARTUP twice");
  state_ = HandshakeState::kConnecting;
  const AuthRoles roles =
      auth_roles(auth_origin, auth_target, config.forward_client_credentials_to_origin);
  auth_.primary = roles.primary;
  auth_.client = roles.client_creds_are_target ? Cluster::kTarget : Cluster::kOrigin;
  const Cluster secondary = other(auth_.primary);
  auth_.secondary = {config.username(secondary), config.password(secondary)};
  auth_.async = {config.username(config.secondary()), config.password(config.secondary())};
  startup_ = std::move(startup);
}

std::optional<net::Credentials> Handshake::replay_credentials(Cluster c) const {
  if (c != auth_.primary) return auth_.secondary;
  if (!primary_asked_) return net::Credentials{};  // the primary asked for no authentication
  if (auth_.primary_replay.empty()) return std::nullopt;
  return auth_.primary_replay;
}

void Handshake::authenticating() {
  if (state_ != HandshakeState::kConnecting)
    throw std::logic_error("AUTHENTICATE outside of STARTUP");
  state_ = HandshakeState::kAuthenticating;
  primary_asked_ = true;
}

void Handshake::completed() {
  if (state_ != HandshakeState::kConnecting && state_ != HandshakeState::kAuthenticating)
    throw std::logic_error("handshake completed before STARTUP");
  state_ = HandshakeState::kReady;
}

std::optional<cql::Bytes> Handshake::auth_response(const std::optional<cql::Bytes>& token,
                                                   const Config& config) {
  auto creds = token ? net::Credentials::parse(*token) : std::nullopt;
  if (!creds) return std::nullopt;  // another SASL step's bytes: the primary's business
  std::optional<cql::Bytes> out;
  auth_.primary_replay = *creds;
  if (auth_.client != auth_.primary) {
    // The client's credentials are the other cluster's: the primary gets its own, configured.
    auth_.secondary = *creds;
    auth_.primary_replay = {config.username(auth_.primary), config.password(auth_.primary)};
    out = auth_.primary_replay.token();
  }
  if (auth_.client == config.secondary()) auth_.async = *creds;
  return out;
}

}  // namespace zdm::proxy
