#include "http.h"

#include <chrono>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace zdm::deploy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

struct Url {
  std::string host, port, target;
};

bool parse_url(const std::string& url, Url& out) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return false;
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    out.host = authority.substr(0, colon);
    out.port = authority.substr(colon + 1);
  } else {
    out.host = authority;
    out.port = "80";
  }
  if (!out.host.empty() && out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  return !out.host.empty();
}

std::chrono::steady_clock::duration to_duration(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

asio::awaitable<void> get(Url url, double timeout, HttpResult& result) {
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(url.host, url.port,
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result.error = fmt::format("cannot resolve {}: {}", url.host, ec.message());
    co_return;
  }
  beast::tcp_stream stream(ex);
  stream.expires_after(to_duration(timeout));
  co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result.error = ec == beast::error::timeout ? "connection timed out" : ec.message();
    co_return;
  }
  http::request<http::empty_body> req{http::verb::get, url.target, 11};
  req.set(http::field::host, url.host + ":" + url.port);
  req.set(http::field::user_agent, "zdm-deploy");
  req.set(http::field::connection, "close");
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result.error = ec == beast::error::timeout ? "request timed out" : ec.message();
    co_return;
  }
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  co_await http::async_read(stream, buffer, res, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result.error = ec == beast::error::timeout ? "response timed out" : ec.message();
    co_return;
  }
  result.status = static_cast<int>(res.result_int());
  result.body = std::move(res.body());
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> probe(std::string host, std::string port, double timeout, bool& ok) {
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  tcp::resolver resolver(ex);
  auto endpoints =
      co_await resolver.async_resolve(host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  beast::tcp_stream stream(ex);
  stream.expires_after(to_duration(timeout));
  co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  ok = !ec;
}

}  // namespace

HttpResult http_get(const std::string& url, double timeout_seconds) {
  HttpResult result;
  Url u;
  if (!parse_url(url, u)) {
    result.error = fmt::format("unsupported URL '{}' (only http://host:port/path)", url);
    return result;
  }
  asio::io_context ioc;
  asio::co_spawn(ioc, get(u, timeout_seconds, result), [&result](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      result.error = ex.what();
    }
  });
  // The stream deadline bounds connect/write/read; this bounds name resolution too.
  ioc.run_for(to_duration(timeout_seconds + 1.0));
  if (!ioc.stopped() && result.status < 0 && result.error.empty()) result.error = "timed out";
  return result;
}

bool tcp_connectable(const std::string& host, int port, double timeout_seconds) {
  bool ok = false;
  asio::io_context ioc;
  asio::co_spawn(ioc, probe(host, std::to_string(port), timeout_seconds, ok),
                 [](std::exception_ptr) {});
  ioc.run_for(to_duration(timeout_seconds + 1.0));
  return ok;
}

}  // namespace zdm::deploy
