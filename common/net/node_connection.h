// A connection from the proxy to one cluster node (a control connection, or a request
// connection on behalf of a client): TCP, then TLS with the peer's name checked, then the CQL
// handshake (STARTUP, SASL authentication) as request/response exchanges, after which the owner
// reads frames itself. Framing follows the negotiated version: v5 switches to segments after
// READY or AUTHENTICATE (native_protocol_v5.spec §2.2).
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cql/compression.h"
#include "common/cql/messages.h"
#include "common/cql/segment.h"
#include "common/net/frame_body.h"
#include "common/net/frame_writer.h"
#include "common/net/stream.h"
#include "common/net/tls.h"

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

/// What NodeConnection::handshake() sends.
struct HandshakeSettings {
  uint8_t version = 4;  // protocol version of every frame (0x41/0x42: DSE_V1/DSE_V2)
  /// Body compression (v3/v4) or segment compression (v5, LZ4 only); named in STARTUP.
  cql::Compression compression = cql::Compression::kNone;
  /// STARTUP's DRIVER_NAME and DRIVER_VERSION; not sent when empty.
  std::string driver_name, driver_version;
  bool ask_options = false;                  // send OPTIONS first and keep SUPPORTED's options
  Credentials credentials;                   // used if the node answers AUTHENTICATE
  std::chrono::milliseconds timeout{10000};  // for each exchange
};

/// How a handshake ended.
struct HandshakeResult {
  enum class Failure : uint8_t {
    kNone,            // READY, or AUTH_SUCCESS after AUTHENTICATE
    kNoAnswer,        // no answer within the timeout
    kClosed,          // the node closed the connection before answering
    kVersionRefused,  // PROTOCOL_ERROR to OPTIONS or STARTUP: retry with a lower version
    kError,           // another ERROR to OPTIONS or STARTUP
    kNoCredentials,   // AUTHENTICATE, but `credentials` are empty
    kAuthRefused,     // the SASL exchange ended in an answer other than AUTH_SUCCESS
    kUnexpected,      // an opcode the spec does not allow here, or a body that cannot be read
  };
  Failure failure = Failure::kNone;
  /// One line: what failed and the node's message ("STARTUP refused: Invalid or unsupported
  /// protocol version (6)", "no answer to STARTUP within 10000 ms").
  std::string why;
  /// The node's own words: an ERROR's message, "no answer", or the unexpected opcode's name.
  std::string message;
  cql::ErrorCode error = cql::ErrorCode::kServerError;  // the ERROR's code, when there was one
  const char* step = "";  // "OPTIONS", "STARTUP" or "AUTH_RESPONSE": the request that failed
  /// SUPPORTED's options (when `ask_options`).
  cql::StringMultimap supported;
  /// The authenticator class of AUTHENTICATE; empty when the node answered READY.
  std::string authenticator;
  explicit operator bool() const { return failure == Failure::kNone; }
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

  /// The CQL handshake of a client (native_protocol_v4.spec §4.1.1-§4.1.2, §4.2.2-§4.2.3,
  /// §4.2.7; native_protocol_v5.spec §2.2 for segments): OPTIONS (when asked), STARTUP with
  /// CQL_VERSION 3.0.0, the compression and driver name, then the SASL exchange of authenticate()
  /// when the node answers AUTHENTICATE. Sets the connection's version and compression first
  /// (v5 with Snappy gets none: v5 segments compress with LZ4 only, §2.4.1). Every exchange
  /// uses stream id 0. Never throws for what the node answers: the result says how it ended.
  awaitable<HandshakeResult> handshake(const HandshakeSettings& settings);

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

  /// After open() or handshake() failed: whether the node talks TLS where `hop` has none, or
  /// plain CQL where `hop` has TLS (a certificate refused is no mismatch). What the node sent
  /// tells when it can ("wrong version number", an answer that is a TLS record); otherwise a
  /// fresh connection to `ep` probes it with a ClientHello (or, TLS configured, a plain
  /// OPTIONS), for at most `timeout`. kNone when neither is shown.
  awaitable<TlsMismatch> diagnose_tls(const tcp::endpoint& ep, const HopSettings& hop,
                                      std::chrono::milliseconds timeout);

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
  error_code tls_error_;              // of the TLS handshake in open()
  std::array<std::byte, 4> first_{};  // the first bytes receive() got (diagnose_tls)
  std::size_t first_size_ = 0;
};

/// Sends `hello` on a fresh TCP connection to `ep` and returns the first bytes answered (2 to
/// 16), or what came before the node closed or `timeout` passed (then maybe none).
awaitable<std::vector<std::byte>> first_answer(asio::io_context& ioc, const tcp::endpoint& ep,
                                               std::vector<std::byte> hello,
                                               std::chrono::milliseconds timeout);

}  // namespace zdm::net
