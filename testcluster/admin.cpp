#include "testcluster/admin.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "common/net/stream.h"

namespace zdm::testcluster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using nlohmann::json;

namespace {

AdminReply reply(unsigned status, const json& j) {
  return AdminReply{status, j.dump() + "\n"};
}

AdminReply error(unsigned status, const std::string& message) {
  return reply(status, json{{"error", message}});
}

std::vector<std::string> split_path(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

}  // namespace

Admin::Admin(asio::io_context& ioc, const std::string& address, uint16_t port, Server& server,
             Store& store)
    : ioc_(ioc), acceptor_(ioc), server_(server), store_(store) {
  tcp::endpoint ep(asio::ip::make_address(address), port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen();
}

void Admin::start() {
  asio::co_spawn(ioc_, accept_loop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("fault admin stopped: {}", ex.what());
    }
  });
}

void Admin::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (tcp::socket* s : open_) s->close(ec);
}

asio::awaitable<void> Admin::accept_loop() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(net::nothrow(ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      continue;
    }
    asio::co_spawn(ioc_, serve(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::warn("fault admin connection: {}", ex.what());
      }
    });
  }
}

asio::awaitable<void> Admin::serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  open_.insert(&stream.socket());
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    boost::system::error_code ec;
    stream.expires_after(std::chrono::seconds(30));
    co_await http::async_read(stream, buffer, req, net::nothrow(ec));
    if (ec) break;
    AdminReply r = handle(std::string(req.method_string()), std::string(req.target()), req.body());
    http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
    res.set(http::field::server, "zdm-testcluster");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(r.body);
    res.prepare_payload();
    co_await http::async_write(stream, res, net::nothrow(ec));
    if (ec || !res.keep_alive()) break;
  }
  open_.erase(&stream.socket());
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

AdminReply Admin::handle(const std::string& method, const std::string& target,
                         const std::string& body) {
  const auto& nodes = store_.info().nodes;
  auto node_json = [&](std::size_t i) {
    return json{{"address", nodes[i].address},
                {"index", i + 1},
                {"up", server_.node_listening(i)},
                {"connections", server_.connection_count(i)},
                {"prepared", store_.prepared_count(i)},
                {"faults", to_json(server_.faults(i))},
                {"consistency", server_.consistency_seen(i)}};
  };
  auto nodes_json = [&] {
    json j = json::array();
    for (std::size_t i = 0; i < nodes.size(); ++i)
      j.push_back({{"address", nodes[i].address}, {"up", server_.node_listening(i)}});
    return j;
  };
  auto parse_body = [&]() -> json {
    if (body.empty()) return json::object();
    return json::parse(body);  // json::parse_error is answered as 400 below
  };
  auto parts = split_path(target);
  try {
    if (parts.empty()) {
      if (method != "GET") return error(405, "GET /");
      json j{{"cluster", store_.info().name}, {"nodes", json::array()}};
      for (std::size_t i = 0; i < nodes.size(); ++i) j["nodes"].push_back(node_json(i));
      return reply(200, j);
    }
    if (parts[0] == "faults" && parts.size() == 1) {
      if (method == "DELETE") {
        for (std::size_t i = 0; i < nodes.size(); ++i) server_.faults(i) = NodeFaults{};
        spdlog::info("fault admin: every node's faults cleared");
        return reply(200, nodes_json());
      }
      if (method != "POST") return error(405, "POST or DELETE /faults");
      json j = parse_body();
      std::vector<NodeFaults> next;
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        next.push_back(server_.faults(i));
        merge_faults(next.back(), j);
      }
      for (std::size_t i = 0; i < nodes.size(); ++i) server_.faults(i) = next[i];
      spdlog::info("fault admin: every node's faults now {}", to_json(next.front()).dump());
      json all = json::array();
      for (std::size_t i = 0; i < nodes.size(); ++i) all.push_back(node_json(i));
      return reply(200, all);
    }
    if (parts[0] != "nodes") return error(404, "no such path: " + target);
    if (parts.size() == 1) {
      if (method != "GET") return error(405, "GET /nodes");
      return reply(200, nodes_json());
    }
    std::optional<std::size_t> node;
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (nodes[i].address == parts[1] || std::to_string(i + 1) == parts[1]) node = i;
    if (!node) return error(404, "no node " + parts[1]);
    std::size_t i = *node;
    if (parts.size() == 2) {
      if (method != "GET") return error(405, "GET /nodes/<node>");
      return reply(200, node_json(i));
    }
    if (parts.size() != 3) return error(404, "no such path: " + target);
    const std::string& verb = parts[2];
    if (verb == "faults") {
      if (method == "GET") return reply(200, to_json(server_.faults(i)));
      if (method == "DELETE") {
        server_.faults(i) = NodeFaults{};
        spdlog::info("fault admin: node {} faults cleared", nodes[i].address);
        return reply(200, node_json(i));
      }
      if (method != "POST") return error(405, "GET, POST or DELETE /nodes/<node>/faults");
      merge_faults(server_.faults(i), parse_body());
      spdlog::info("fault admin: node {} faults now {}", nodes[i].address,
                   to_json(server_.faults(i)).dump());
      return reply(200, node_json(i));
    }
    if (method != "POST") return error(405, "POST /nodes/<node>/" + verb);
    if (verb == "stop") {
      server_.stop_node(i);
    } else if (verb == "start") {
      server_.start_node(i);
    } else if (verb == "restart") {
      server_.stop_node(i);
      server_.start_node(i);
    } else if (verb == "drop") {
      std::size_t n = server_.drop_connections(i);
      spdlog::info("fault admin: node {}: {} connections dropped", nodes[i].address, n);
    } else {
      return error(404, "no such action: " + verb + " (stop, start, restart, drop, faults)");
    }
    return reply(200, nodes_json());
  } catch (const json::exception& e) {
    return error(400, std::string("bad JSON: ") + e.what());
  } catch (const std::invalid_argument& e) {
    return error(400, e.what());
  } catch (const std::exception& e) {
    return error(500, e.what());
  }
}

}  // namespace zdm::testcluster
