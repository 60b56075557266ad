// The network side of zdm-testcluster: one listening socket per node address, one reader and
// one writer coroutine per client connection, all on one io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "tests/cluster/store.h"

namespace zdm::testcluster {

class Connection;

class Server {
 public:
  Server(boost::asio::io_context& ioc, Store& store, uint16_t port);

  /// Binds every node's address (never the wildcard) and starts accepting.
  /// Throws boost::system::system_error when an address cannot be bound.
  void start();
  /// Stops accepting and closes every connection; io_context::run then returns.
  void stop();
  /// Fault admin: `node` stops listening and its connections close, as a stopped Cassandra
  /// node's (the store answers for its replicas: Store::set_node_up); start_node undoes it.
  /// Throws boost::system::system_error when the address cannot be bound again.
  void stop_node(std::size_t node);
  void start_node(std::size_t node);

  // For connections.
  Store& store() { return store_; }
  void add(Connection* c) { connections_.insert(c); }
  void remove(Connection* c) { connections_.erase(c); }
  /// Pushes a SCHEMA_CHANGE event to every connection that sent REGISTER for it.
  void broadcast(const cql::SchemaChange& change);

 private:
  boost::asio::io_context& ioc_;
  Store& store_;
  uint16_t port_;
  void listen(std::size_t node);
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>>
      acceptors_;  // per node; null: stopped
  std::set<Connection*> connections_;
  bool stopping_ = false;
};

}  // namespace zdm::testcluster
