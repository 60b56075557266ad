// The metrics and health HTTP endpoint (reference/zdm-proxy.md §4), served with Boost.Beast.
#pragma once

#include <functional>
#include <string>

#include "proxy/net.h"

namespace zdm::proxy {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// What a handler sees of a request.
struct HttpRequest {
  std::string method, target;
  std::string authorization;  // the Authorization header, "" if absent
  std::string body;
};

/// handler(request) → response. Called on a thread running the io_context: with several
/// threads, handlers of different connections may run at once.
using HttpHandler = std::function<HttpResponse(const HttpRequest& request)>;

class HttpServer {
 public:
  /// Binds address:port; throws boost::system::system_error if it cannot.
  HttpServer(asio::io_context& ioc, const std::string& address, int port, HttpHandler handler);
  void start();
  void stop();

 private:
  awaitable<void> accept_loop();
  awaitable<void> serve(tcp::socket socket);
  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
  HttpHandler handler_;
};

}  // namespace zdm::proxy
