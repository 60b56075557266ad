// The fault admin of zdm-testcluster (--admin ADDRESS:PORT): HTTP with JSON in and out, one
// per cluster process, acting on each node (by address, or by 1-based index).
//
//   GET    /                          the cluster: every node's state, connections, prepared
//                                     statements, faults, and the requests it received by
//                                     consistency level ({"QUERY": {"ONE": 3}, ...})
//   GET    /nodes                     [{"address": "127.0.2.1", "up": true}, ...]
//   POST   /nodes/<node>/stop         node down: listener and connections closed; the other
//                                     nodes answer UNAVAILABLE for the replicas it held
//   POST   /nodes/<node>/start        node up again, its prepared statements forgotten
//   POST   /nodes/<node>/restart      stop, then start
//   POST   /nodes/<node>/drop         close every connection of the node now
//   GET    /nodes/<node>/faults       the node's faults
//   POST   /nodes/<node>/faults       merge a JSON object of faults into the node's
//   DELETE /nodes/<node>/faults       clear the node's faults
//   POST   /faults                    merge faults into every node's
//   DELETE /faults                    clear every node's faults
//
// Faults (each optional; null removes it; each takes "fraction" 0..1 (default 1),
// "statements": "all" | "reads" | "writes" (default all) and "opcodes": ["QUERY", "PREPARE",
// "EXECUTE", "BATCH"] (default all four)):
//   "latency": {"ms": 200} or {"min_ms": 50, "max_ms": 150}    answer late (or 200 for short)
//   "error": {"type": "write_timeout" | "read_timeout" | "unavailable" | "overloaded" |
//             "server_error" | "is_bootstrapping", optional "message", "received",
//             "block_for", "alive", "write_type", "data_present"}
//   "drop": {}                      close the connection instead of answering
//   "silence": {}                   accept the request and never answer
//   "garbage": {"mode": "body" | "header"}   answer with a corrupt frame
// Example: curl -X POST 127.0.2.1:9100/nodes/2/faults
//            -d '{"error": {"type": "write_timeout", "fraction": 0.5, "statements": "writes"}}'
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <set>
#include <string>

#include "testcluster/server.h"
#include "testcluster/store.h"

namespace zdm::testcluster {

/// One HTTP answer of the admin: status and a JSON body.
struct AdminReply {
  unsigned status = 200;
  std::string body;
};

class Admin {
 public:
  /// Binds address:port; throws boost::system::system_error if it cannot.
  Admin(boost::asio::io_context& ioc, const std::string& address, uint16_t port, Server& server,
        Store& store);
  void start();
  void stop();

  /// Answers one request (the routes above). Runs on the io_context's thread.
  AdminReply handle(const std::string& method, const std::string& target, const std::string& body);

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::set<boost::asio::ip::tcp::socket*> open_;  // keep-alive connections, closed by stop()
  Server& server_;
  Store& store_;
};

}  // namespace zdm::testcluster
