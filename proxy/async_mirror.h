// The async connector of DUAL_ASYNC_ON_SECONDARY (ZDM's, datastax/zdm-proxy
// proxy/pkg/zdmproxy/asyncconnector.go): reads (and USE, OPTIONS) are also sent to the secondary
// cluster on a connection of their own; their answers are counted, never returned to the client,
// and a slow or failing secondary never holds up the client. One per client session, on its
// worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/cql/compression.h"
#include "proxy/connector.h"
#include "proxy/read_compare.h"
#include "proxy/shared_state.h"

namespace zdm::proxy {

class AsyncMirror {
 public:
  AsyncMirror(asio::io_context& ioc, SharedState& shared, const std::string& client_addr)
      : ioc_(ioc), shared_(shared), config_(shared.config), client_addr_(client_addr) {}

  /// Connects to a node of the secondary and replays the client's handshake on it: `startup`
  /// (the client's STARTUP frame), then SASL with `creds` if the node asks; mirroring starts
  /// once it answers READY or AUTH_SUCCESS within async_handshake_timeout_ms. A failure is
  /// logged and disables mirroring for this client connection only. `listener` (the session)
  /// hears the connector's frames and close.
  void start(std::shared_ptr<ConnectorListener> listener, uint8_t version,
             cql::Compression compression, cql::Bytes startup, net::Credentials creds);
  /// True while mirrored requests can be sent.
  bool ready() const { return ready_; }

  /// Mirrors request `id`: a copy of `frame` (the frame the secondary's cluster gets) with a
  /// stream id of the async connector. An EXECUTE is kept to retry it once after UNPREPARED.
  /// Dropped, counted as failed ("other"), when async_connector_write_queue_size_frames are
  /// already in flight; dropped when no stream id is free, and while not ready() (before start(),
  /// during the handshake replay, after the connector closed).
  /// True when it went out.
  bool mirror(uint64_t id, const cql::Bytes& frame, cql::Opcode opcode,
              std::chrono::steady_clock::time_point start, RequestType metric);
  /// read_compare: mirrored read `id` of `table` ("ks.table"; `key`: its partition key for
  /// logs) is compared once both clusters answered.
  void expect_compare(uint64_t id, std::string table, std::string key);
  /// read_compare: the primary's answer `frame` to request `id`.
  void primary_answered(uint64_t id, const cql::Bytes& frame);
  /// An answer on the async connector (the listener passes the connector's frames here).
  void on_frame(Connector& from, const cql::Header& h, cql::Bytes frame);
  /// The async connector closed: mirroring stops, the client connection is unaffected.
  void on_closed(Connector& c);
  /// Mirrored requests started before `deadline` are forgotten, counted as client_timeout.
  void sweep(std::chrono::steady_clock::time_point deadline);
  /// The session closed: the connector closes, requests in flight are forgotten.
  void close();
  /// The async connector, null before start().
  Connector* connector() const { return connector_.get(); }

 private:
  /// A mirrored request in flight.
  struct Request {
    std::chrono::steady_clock::time_point start;
    RequestType metric = RequestType::kNone;
    cql::Bytes execute;        // an EXECUTE, kept to retry it once after re-preparing
    bool repreparing = false;  // a PREPARE for it is in flight
  };
  /// UNPREPARED: PREPAREs the statement on the secondary and retries the EXECUTE once (ZDM only
  /// re-prepares). False if it cannot (statement not in the cache, no stream id).
  bool reprepare(uint64_t id, Request& r, const cql::Bytes& error_frame);

  asio::io_context& ioc_;
  SharedState& shared_;
  const Config& config_;
  const std::string& client_addr_;
  std::shared_ptr<Connector> connector_;
  uint8_t version_ = 0;
  cql::Compression compression_ = cql::Compression::kNone;
  bool ready_ = false;
  bool closed_ = false;
  std::unordered_map<uint64_t, Request> started_;

  /// read_compare: a mirrored read waiting for one of its answers.
  struct Comparison {
    std::chrono::steady_clock::time_point start;
    std::string table, key;
    bool primary_done = false, secondary_done = false;
    std::optional<RowsDigest> primary, secondary;
  };
  /// Both answered: counted (reads that are not ROWS on both sides are not compared).
  void compared(std::unordered_map<uint64_t, Comparison>::iterator it);
  std::unordered_map<uint64_t, Comparison> comparisons_;
  cql::Bytes compare_scratch_;
};

}  // namespace zdm::proxy
