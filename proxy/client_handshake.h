// The I/O of a client connection's handshake (native_protocol_v4.spec §4.1.1 STARTUP, §4.1.2
// AUTH_RESPONSE, §4.1.4 OPTIONS; §8 SASL) with ZDM's rules (datastax/zdm-proxy
// proxy/pkg/zdmproxy/clienthandler.go): STARTUP opens a connection to a node of each cluster and
// goes to both; the client's SASL exchange goes to the primary handshake cluster; the other
// cluster is authenticated with the configured credentials. What each frame means is
// handshake.h's pure state machine; this class does the exchanges it calls for and tells the
// session what to do next. It never calls the session: the session owns it, the client's
// socket and the cluster connections it opens.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/cql/compression.h"
#include "common/cql/frame.h"
#include "common/cql/segment.h"
#include "common/net/frame_writer.h"
#include "proxy/asio.h"
#include "proxy/connector.h"
#include "proxy/handshake.h"
#include "proxy/shared_state.h"

namespace zdm::proxy {

/// The client side of a session, as its handshake sees it: where answers go, the frames read,
/// and the connection's protocol (the version is set by the session's version checks, the
/// compression by STARTUP).
struct ClientSide {
  net::FrameWriter& writer;
  cql::FrameStream& frames;
  const std::string& addr;  // "ip:port", for logs
  const uint8_t& version;
  cql::Compression& compression;
};

/// Whether a session's connection to a cluster takes requests.
enum class Link : uint8_t {
  kUp,            // connected to a node: requests go out
  kReconnecting,  // its node failed; another node is being connected: requests wait
  kDown,          // no node of the cluster could be reached: requests for it fail at once
};

/// A session's two request connections, one to a node of each cluster (null until STARTUP).
/// After the handshake a failed connection is replaced (failover.h); until then its link says
/// what requests for that cluster do.
struct ClusterConnections {
  std::shared_ptr<Connector> origin, target;
  Link link[2] = {Link::kUp, Link::kUp};  // by Cluster
  Connector& of(Cluster c) { return c == Cluster::kOrigin ? *origin : *target; }
  std::shared_ptr<Connector>& slot(Cluster c) { return c == Cluster::kOrigin ? origin : target; }
  Link state(Cluster c) const { return link[static_cast<int>(c)]; }
  void set(Cluster c, Link l) { link[static_cast<int>(c)] = l; }
};

/// SUPPORTED for an OPTIONS `h` (native_protocol_v4.spec §4.2.4): the primary's options, with
/// COMPRESSION (and PROTOCOL_VERSIONS) limited to what both clusters offer, so that what a
/// client picks works on both connections.
cql::Bytes supported_frame(const SharedState& shared, const cql::Header& h);

class ClientHandshake {
 public:
  /// Before the handshake completes, frame bodies (and what a compressed one inflates to) are
  /// at most this many bytes: an unauthenticated client cannot make the proxy buffer much.
  static constexpr uint32_t kMaxBody = 256 * 1024;

  /// What the session does after a handshake frame.
  enum class Next : uint8_t {
    kContinue,  // more handshake frames are expected
    kReady,     // READY or AUTH_SUCCESS went to the client: requests flow
    kClose,     // the answer is queued; close the connection once it is written
  };

  /// `closed`: true once the session closed (checked after every exchange).
  ClientHandshake(asio::io_context& ioc, SharedState& shared, ClientSide client,
                  ClusterConnections& clusters, std::function<bool()> closed)
      : ioc_(ioc),
        shared_(shared),
        config_(shared.config),
        client_(client),
        clusters_(clusters),
        closed_(std::move(closed)) {}

  /// Handles client frame `frame` (header `h`, its version accepted) before the handshake
  /// completes. STARTUP opens `clusters` (their connectors report to `listener`). Answers are
  /// queued on the client's writer; after AUTHENTICATE or READY, v5 connections switch to
  /// segments (native_protocol_v5.spec §2).
  awaitable<Next> on_frame(const cql::Header& h, cql::Bytes frame,
                           std::shared_ptr<ConnectorListener> listener);

  /// The state machine: ready(), auth() (who authenticates where), startup_frame().
  const Handshake& state() const { return handshake_; }

 private:
  awaitable<Next> on_startup(const cql::Header& h, cql::Bytes frame,
                             std::shared_ptr<ConnectorListener> listener);
  awaitable<Next> on_auth_response(const cql::Header& h, cql::Bytes frame);
  /// The primary accepted the client (`final_resp`: READY or AUTH_SUCCESS): the secondary is
  /// authenticated with the configured credentials if it asked, then the client gets
  /// `final_resp`.
  awaitable<Next> finish(const cql::Header& h, const cql::Frame& final_resp);
  /// Opens a connection to a node of each cluster (a node that refuses goes to the back of its
  /// cluster's list: the next assigned node is tried, each once). A cluster none of whose nodes
  /// connects is left Link::kDown when start_without() allows, else false is returned with the
  /// client answered.
  awaitable<bool> connect_clusters(const cql::Header& h,
                                   std::shared_ptr<ConnectorListener> listener);
  /// Whether a new client connection may start while no node of `c` is reachable: "" when it
  /// may (`c` is the secondary, and the client's credentials, if any, were checked by the
  /// primary), else why not ("; ..." appended to the refusal). A connection started without
  /// `c` fails the requests that need `c` until the session reaches one of its nodes.
  std::string start_without(Cluster c) const;
  /// A response to the client carrying `f`'s opcode and body on `stream`.
  cql::Bytes client_frame(const cql::Frame& f, int16_t stream) const;
  void reply_error(const cql::Header& h, cql::ErrorCode code, std::string message);
  void switch_to_segments();

  asio::io_context& ioc_;
  SharedState& shared_;
  const Config& config_;
  ClientSide client_;
  ClusterConnections& clusters_;
  std::function<bool()> closed_;
  Handshake handshake_;
  cql::Bytes scratch_;  // a decompressed AUTH_RESPONSE body
};

}  // namespace zdm::proxy
