// A client connection's cluster connection replaced after its node failed: the client's
// handshake (STARTUP, SASL with the credentials the node accepted before, the keyspace of USE)
// replayed on a connection to another node of the same cluster, so that one node's fault costs
// only the requests that were in flight on it, not the client connection (Cassandra drivers do
// the same for their own connections: a node's failure fails the requests on it, and the next
// requests go to another node). Prepared statements are per node: an EXECUTE the new node does
// not know is answered UNPREPARED and the driver prepares it again (native_protocol_v4.spec
// §4.2.5.4, §8 "Unprepared").
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/cql/compression.h"
#include "common/cql/frame.h"
#include "common/net/node_connection.h"
#include "proxy/asio.h"
#include "proxy/connector.h"
#include "proxy/shared_state.h"

namespace zdm::proxy {

/// What a connection to another node needs to stand in for a client's: the client's protocol
/// and STARTUP frame, and the credentials for the node's authenticator if it asks.
struct HandshakeReplay {
  uint8_t version = 0;
  cql::Compression compression = cql::Compression::kNone;
  cql::Bytes startup;            // the client's STARTUP frame (any stream id)
  net::Credentials credentials;  // empty: the cluster asked for none
};

/// Replays `replay` on `k` (open; its protocol set from `replay`): STARTUP, then the SASL
/// exchange (PLAIN, net::NodeConnection::authenticate) when the node answers AUTHENTICATE, then
/// `USE "keyspace"` when `keyspace` is not empty; each answered within `timeout`. Uses stream id
/// 0 (nothing else is in flight yet). Returns "" once the node accepted all of it, else why not
/// (the node's ERROR text, or "no answer within N ms").
awaitable<std::string> replay_handshake(Connector& k, const HandshakeReplay& replay,
                                        const std::string& keyspace,
                                        std::chrono::milliseconds timeout);

/// A connection to a node of cluster `c` for a client connection whose connection to node
/// `failed` ("ip:port"; "" for none) was lost: the nodes assigned to this proxy (in turn), then
/// the other nodes of the local data center (skipped when `assigned_only`), are tried once
/// each, `failed` last, each given `timeout` to connect and accept the replayed handshake.
/// Returns the connection, ready for requests (its metrics set, its frames going to `listener`
/// once read_loop() runs), or null with `why` naming each node's failure.
awaitable<std::shared_ptr<Connector>> reconnect(asio::io_context& ioc, SharedState& shared,
                                                Cluster c, const std::string& failed,
                                                const HandshakeReplay& replay,
                                                const std::string& keyspace,
                                                std::shared_ptr<ConnectorListener> listener,
                                                std::chrono::milliseconds timeout,
                                                bool assigned_only, std::string& why);

}  // namespace zdm::proxy
