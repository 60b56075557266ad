// A small HTTP/1.1 server on Boost.Beast: the proxy's /metrics, health and admin endpoints,
// zdm-deploy's dashboard page, zdm-data's /metrics, zdm-testcluster's fault admin. One coroutine
// per connection; the handler runs on the io_context's thread.
#pragma once

#include <functional>
#include <string>

#include "common/net/stream.h"

namespace zdm::http {

namespace asio = boost::asio;
using net::awaitable;
using tcp = asio::ip::tcp;

struct Response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// What a handler sees of a request.
struct Request {
  std::string method, target;
  std::string authorization;  // the Authorization header, "" if absent
  std::string body;
};

/// handler(request) → response. Called on a thread running the io_context: with several
/// threads, handlers of different connections may run at once.
using Handler = std::function<Response(const Request& request)>;

class Server {
 public:
  /// Binds address:port; throws boost::system::system_error if it cannot.
  Server(asio::io_context& ioc, const std::string& address, int port, Handler handler);
  void start();
  void stop();

 private:
  awaitable<void> accept_loop();
  awaitable<void> serve(tcp::socket socket);
  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
  Handler handler_;
};

}  // namespace zdm::http
