// Routing of a client connection's requests once its handshake is done: where each goes
// (router.h), writes completed with one value for both clusters (rewrite.h), target's copy with
// target's prepared ids (prepared_ids.h), or the answer the proxy gives itself (system.local and
// peers, system_queries.h; UNPREPARED for ids it does not know).
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cql/compression.h"
#include "common/cql/frame.h"
#include "proxy/request.h"
#include "proxy/shared_state.h"
#include "proxy/system_queries.h"

namespace zdm::proxy {

/// What became of a client request.
struct Routed {
  bool forward = false;             // for the clusters: route()'s `out` is filled in
  cql::Bytes answer;                // or answered by the proxy: the response frame
  bool registered = false;          // REGISTER
  std::vector<std::string> events;  // REGISTER: the TOPOLOGY_CHANGE / STATUS_CHANGE asked for
};

class RequestRouter {
 public:
  /// `ioc`: the session's worker (the journal's flush is queued there).
  RequestRouter(SharedState& shared, const TraceRouting& traces, asio::io_context& ioc)
      : shared_(shared), config_(shared.config), traces_(traces), ioc_(ioc) {}

  /// Routes client request `frame` (header `h`, stream id >= 0, not OPTIONS; its body
  /// compressed with `compression` when its flag says so, decompressed into `scratch`).
  /// `keyspace`: the connection's keyspace (from USE). Throws cql::ProtocolError on a malformed
  /// request (the caller closes the connection). A request for the clusters is built in `out`
  /// (a fresh Outgoing of the caller's: the request is moved once more, into the session's
  /// pending map, not at each step).
  Routed route(const cql::Header& h, cql::Bytes frame, cql::Compression compression,
               cql::Bytes& scratch, const std::string& keyspace, Outgoing& out);

  /// A QUERY's body inflates to at most this many bytes for routing when its statement is
  /// not a write: the query string comes first (native_protocol_v4.spec §4.1.4), and the frame
  /// is forwarded compressed.
  static constexpr std::size_t kQueryPrefixBytes = 64 * 1024;
  /// The first kQueryPrefixBytes of an LZ4-compressed QUERY `frame` (header `h`) inflated into
  /// `scratch`, when they hold its whole query string and the statement is not a write;
  /// nullopt otherwise (the body is then inflated whole, or refused: over `max_uncompressed`
  /// bytes, or corrupt).
  static std::optional<cql::BytesView> query_prefix(const cql::Header& h, const cql::Bytes& frame,
                                                    cql::Compression compression,
                                                    cql::Bytes& scratch, uint32_t max_uncompressed);

 private:
  /// A client request being routed: its frame (and decompressed body), where it goes, and
  /// target's copy when it differs.
  struct Request {
    cql::Header h;
    cql::Bytes& frame;    // the Outgoing's
    cql::BytesView body;  // message body (custom payload prefix included), decompressed
    std::size_t prefix_end = 0;
    Decision d;
    PendingRequest& p;                        // the Outgoing's
    std::optional<cql::Bytes>& target_frame;  // the Outgoing's
    void set_body(const cql::Bytes& b);       // a rewritten body (uncompressed frame)
    // Filled in only while journaling (target_guard.h):
    bool journaling = false;
    bool write = false;         // INSERT, UPDATE, DELETE, BATCH
    bool replayable = false;    // not a lightweight transaction or counter update
    std::string table;          // "ks.table"
    std::string_view keyspace;  // for unqualified names when replayed
    // The journal's copy (journal_record.h) in parts: views into the request, the prepared
    // statement (held by `entry`) and `replay_len`, or into `replay_body` (a BATCH, rebuilt).
    std::array<std::string_view, 3> replay_parts{};
    std::array<char, 4> replay_len{};
    std::string replay_body;
    std::shared_ptr<const PreparedEntry> entry;
  };
  // Each routes one kind of request; false when it was answered here (`answer` set).
  bool route_query(Request& req, const std::string& keyspace, cql::Bytes& answer);
  bool route_prepare(Request& req, const std::string& keyspace, cql::Bytes& answer);
  bool route_execute(Request& req, cql::Bytes& answer);
  bool route_batch(Request& req, const std::string& keyspace, cql::Bytes& answer);
  /// Journaling: whether a BATCH is replayable, its journal copy and table.
  void journal_batch(Request& req, const std::string& keyspace);
  /// target_consistency_level: a QUERY, EXECUTE or BATCH that goes to target (or is mirrored
  /// there) gets a copy for target carrying that level (wire.h set_consistency).
  void override_target_consistency(Request& req);
  /// Target held back or isolate mode: the write is journaled (and, target held back, sent to
  /// origin only); requests the primary alone can serve go there; mirrored reads pause.
  void protect_target(Request& req);
  /// The answer to a query on system.local/peers/peers_v2 (`params`: an EXECUTE's).
  cql::Bytes answer_local(const cql::Header& h, LocalTable table, const cql::StatementInfo& info,
                          std::string_view query, const cql::QueryParameters* params);

  SharedState& shared_;
  const Config& config_;
  const TraceRouting& traces_;
  asio::io_context& ioc_;
};

}  // namespace zdm::proxy
