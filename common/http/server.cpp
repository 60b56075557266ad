#include "common/http/server.h"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace zdm::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using net::nothrow;

Server::Server(asio::io_context& ioc, const std::string& address, int port,
                       Handler handler)
    : ioc_(ioc), acceptor_(ioc), handler_(std::move(handler)) {
  tcp::resolver resolver(ioc);
  auto ep = resolver.resolve(address, std::to_string(port)).begin()->endpoint();
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen();
}

void Server::start() {
  asio::co_spawn(ioc_, accept_loop(), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("HTTP server stopped: {}", ex.what());
      }
    }
  });
}

void Server::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

awaitable<void> Server::accept_loop() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(nothrow(ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      continue;
    }
    asio::co_spawn(ioc_, serve(std::move(socket)), asio::detached);
  }
}

awaitable<void> Server::serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024);  // admin requests are tiny
    boost::system::error_code ec;
    stream.expires_after(std::chrono::seconds(30));
    co_await bhttp::async_read(stream, buffer, parser, nothrow(ec));
    if (ec) break;
    bhttp::request<bhttp::string_body> req = parser.release();
    Request in{std::string(req.method_string()), std::string(req.target()),
                   std::string(req[bhttp::field::authorization]), std::move(req.body())};
    Response r = handler_(in);
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), req.version()};
    res.set(bhttp::field::server, "zdm-proxy");
    res.set(bhttp::field::content_type, r.content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(r.body);
    res.prepare_payload();
    co_await bhttp::async_write(stream, res, nothrow(ec));
    if (ec || !res.keep_alive()) break;
  }
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace zdm::http
