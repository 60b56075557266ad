// Controller-side network checks: HTTP GET (Boost.Beast) and TCP connect, with deadlines.
#pragma once

#include <string>

namespace zdm::deploy {

struct HttpResult {
  int status = -1;  // -1: no HTTP response (see error)
  std::string body;
  std::string error;
};

// GET of an http:// URL; the whole exchange is bounded by timeout_seconds.
HttpResult http_get(const std::string& url, double timeout_seconds);

// True when a TCP connection to host:port succeeds within timeout_seconds.
bool tcp_connectable(const std::string& host, int port, double timeout_seconds);

}  // namespace zdm::deploy
