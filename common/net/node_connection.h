// A connection from the proxy to one cluster node (a control connection, or a request
// connection on behalf of a client): TCP, then TLS with the peer's name checked, then the CQL
// handshake (STARTUP, SASL authentication) as request/response exchanges, after which the owner
// reads frames itself. Framing follows the negotiated version: v5 switches to segments after
// READY or AUTHENTICATE (native_protocol_v5.spec §2.2).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/cql/compression.h"
#include "common/cql/messages.h"
#include "common/cql/segment.h"
#include "common/net/frame_writer.h"
#include "common/net/stream.h"

namespace zdm::net {

/// SASL PLAIN credentials (RFC 4616): token = [authzid] NUL user NUL password.
struct Credentials {
  std::string username, password;
  bool empty() const { return username.empty(); }
  cql::Bytes token() const;
  /// The credentials in a PLAIN token; nullopt when the token is not one (e.g. the mechanism
  /// name "PLAIN" a client sends to DseAuthenticator first).
  static std::optional<Credentials> parse(cql::BytesView token);
};

/// DseAuthenticator's class name: it wants the mechanism ("PLAIN") before the token.
inline constexpr const char* kDseAuthenticator = "com.datastax.bdp.cassandra.auth.DseAuthenticator";

/// How to reach one cluster.
struct HopSettings {
  std::shared_ptr<ssl::context> tls;  // null: plaintext
  bool verify_hostname = true;        // the certificate must name the address dialled
  std::chrono::milliseconds connect_timeout{30000};
};

class NodeConnection : public std::enable_shared_from_this<NodeConnection> {
 public:
  explicit NodeConnection(asio::io_context& ioc);
  virtual ~NodeConnection() = default;

  /// Connects to `ep` and, with TLS, handshakes and checks that the certificate names `host`
  /// (an IP literal or a DNS name). Starts the writer coroutine on success. On failure returns
  /// false and sets `why` to one line ("connection refused", "TLS handshake: certificate verify
  /// failed (Hostname mismatch)").
  awaitable<bool> open(const tcp::endpoint& ep, const std::string& host, const HopSettings& hop,
                       std::string& why);
  /// Sends `frame` and waits for the response on its stream (events are skipped), up to
  /// `timeout`; nullopt on timeout or a closed connection. A READY or AUTHENTICATE response on
  /// v5 switches both directions to segments. Only while nobody else reads this connection.
  awaitable<std::optional<cql::Frame>> exchange(cql::Bytes frame,
                                                std::chrono::milliseconds timeout);
  /// The receiving half of exchange(): waits for the response on `stream` to a frame already
  /// sent. Several frames may be sent to different connections first, then received in turn.
  awaitable<std::optional<cql::Frame>> receive(int16_t stream, std::chrono::milliseconds timeout);
  /// Completes SASL authentication after AUTHENTICATE(`authenticator`): DseAuthenticator gets
  /// "PLAIN" and then the token, others the token at once. Returns the final response (AUTH_SUCCESS
  /// or the ERROR) or nullopt on timeout. `stream` is the stream id to use.
  awaitable<std::optional<cql::Frame>> authenticate(const std::string& authenticator,
                                                    const Credentials& creds, int16_t stream,
                                                    std::chrono::milliseconds timeout);

  /// Version and compression of this connection (from its STARTUP): framing and body reads.
  void set_protocol(uint8_t version, cql::Compression compression) {
    version_ = version;
    compression_ = compression;
  }
  uint8_t version() const { return version_; }
  cql::Compression compression() const { return compression_; }
  /// "ip:port" of the node.
  const std::string& node() const { return node_; }

  Stream& stream() { return stream_; }
  FrameWriter& writer() { return writer_; }
  cql::FrameStream& frames() { return frames_; }
  void send(cql::Bytes frame) { writer_.push(std::move(frame)); }
  /// Closes the socket; the writer stops. Idempotent.
  void close();
  bool closed() const { return closed_; }

 protected:
  /// Called once when the writer fails (not on close()).
  virtual void on_write_error(const error_code&) {}

  asio::io_context& ioc_;
  Stream stream_;
  FrameWriter writer_;
  cql::FrameStream frames_;
  std::string node_;
  uint8_t version_ = 4;
  cql::Compression compression_ = cql::Compression::kNone;
  bool closed_ = false;
};

/// Reads the body of `frame` (header included), decompressing it into `scratch` when its
/// compression flag is set. Throws cql::ProtocolError on a corrupt or oversized body.
cql::BytesView frame_body(const cql::Bytes& frame, cql::Compression compression,
                          cql::Bytes& scratch);

}  // namespace zdm::net
