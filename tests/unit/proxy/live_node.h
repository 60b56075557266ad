// Helpers of the proxy tests that talk to a real CQL server: zdm-testcluster's server run in the
// test's own process on one io_context, on loopback addresses 127.34.2.x (no other test uses
// them; each case has its own). The test thread runs the io_context itself, step by step, until
// what it waits for has happened.
#pragma once

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/cql/messages.h"
#include "common/net/stream.h"
#include "testcluster/server.h"
#include "testcluster/store.h"

namespace zdm::test {

namespace asio = boost::asio;
using namespace std::chrono_literals;

/// Runs `ioc` until `done()` or `limit` has passed; returns `done()`.
inline bool run_until(asio::io_context& ioc, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (ioc.stopped()) ioc.restart();
    ioc.run_one_for(10ms);
  }
  return true;
}

/// Runs `ioc` for `d` (to see that something does not happen).
inline void run_for(asio::io_context& ioc, std::chrono::milliseconds d) {
  run_until(
      ioc, [] { return false; }, d);
}

/// Runs the coroutine `make()` returns on `ioc` to its end and gives its result.
template <class T, class F>
T run_coro(asio::io_context& ioc, F make) {
  std::optional<T> out;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(ioc, make(), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) out = std::move(v);
    done = true;
  });
  REQUIRE(run_until(
      ioc, [&] { return done; }, 10000ms));
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

/// Stand-in nodes on `addresses` (port 9042), serving from one store, started at once.
struct LiveCluster {
  LiveCluster(asio::io_context& ioc, std::vector<std::string> addresses,
              testcluster::ServerOptions options = {}, bool prepared_per_node = false)
      : store(info(addresses, prepared_per_node)), server(ioc, store, std::move(options)) {
    server.start();
  }
  static testcluster::ClusterInfo info(const std::vector<std::string>& addresses,
                                       bool prepared_per_node) {
    testcluster::ClusterInfo i;
    i.nodes = testcluster::make_nodes(addresses);
    i.prepared_per_node = prepared_per_node;
    return i;
  }
  /// Runs `cql` on node `node` directly (no socket); REQUIREs a RESULT.
  cql::ResultMsg run(const std::string& cql, std::size_t node = 0) {
    testcluster::Session s;
    cql::QueryMsg q;
    q.query = cql;
    auto out = store.query(node, s, q);
    REQUIRE(std::holds_alternative<cql::ResultMsg>(out.response));
    return std::get<cql::ResultMsg>(out.response);
  }
  /// Rows of a SELECT run directly on the store.
  std::size_t count_rows(const std::string& cql) {
    auto r = run(cql);
    REQUIRE(std::holds_alternative<cql::RowsResult>(r.body));
    return std::get<cql::RowsResult>(r.body).rows.size();
  }

  testcluster::Store store;
  testcluster::Server server;
};

inline net::tcp::endpoint endpoint(const std::string& address, unsigned short port = 9042) {
  return {asio::ip::make_address(address), port};
}

/// A QUERY frame (v4, uncompressed) on `stream`.
inline cql::Bytes query_frame(const std::string& text, int16_t stream, uint8_t flags = 0) {
  cql::QueryMsg q;
  q.query = text;
  return cql::encode_message(4, false, stream, cql::Opcode::kQuery, q, flags);
}

/// The kind of RESULT response `frame` (body uncompressed), after its tracing id and the rest.
inline cql::ResultKind result_kind(const cql::Bytes& frame) {
  auto h = cql::decode_header(cql::BytesView(frame.data(), cql::kHeaderSize));
  cql::Reader r(cql::BytesView(frame.data() + cql::kHeaderSize, h.length));
  cql::skip_response_prefix(r, h.flags);
  return static_cast<cql::ResultKind>(r.read_int());
}

}  // namespace zdm::test
