// A connected TCP socket, plain or wrapped in TLS (Asio's ssl::stream over OpenSSL), with coroutine
// reads and writes that return errors as values (error codes, not exceptions). Used by the proxy on
// both hops and by zdm-testcluster.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace zdm::net {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <class T = void>
using awaitable = asio::awaitable<T>;

/// Completion token that stores the error in `ec` instead of throwing.
inline auto nothrow(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

class Stream {
 public:
  explicit Stream(tcp::socket socket) : socket_(std::move(socket)) {}
  /// An unconnected socket on `ioc` (connect through socket()).
  explicit Stream(asio::io_context& ioc) : socket_(ioc) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  /// Wraps the (connected) socket in TLS with `ctx`; handshake() must follow before any read or
  /// write. `ctx` must outlive the stream.
  void use_tls(ssl::context& ctx);
  bool tls() const { return tls_ != nullptr; }
  /// The TLS layer (for peer-name checks); null when plain.
  ssl::stream<tcp::socket>* tls_stream() { return tls_.get(); }
  /// The TCP socket underneath, for connect, options and endpoints.
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : socket_; }

  /// TLS handshake with a deadline (the socket is closed when it passes). Returns the error,
  /// asio::error::timed_out on the deadline. A no-op for a plain stream.
  awaitable<error_code> handshake(ssl::stream_base::handshake_type type,
                                  std::chrono::milliseconds timeout);
  /// Reads what is available into `buf` (at least one byte unless an error is returned in ec).
  awaitable<std::size_t> read_some(asio::mutable_buffer buf, error_code& ec);
  /// Waits for and reads what has arrived, without a buffer of the connection's own on a plain
  /// socket: it waits until readable, then reads into a per-thread buffer (so an idle connection
  /// holds no read buffer), and reads again at once only when that came back full. With TLS it
  /// reads into a buffer of `tls_buffer` bytes kept by the stream. The bytes stay valid until
  /// the caller's next co_await. An empty view comes with an error in ec (EOF included).
  awaitable<std::span<const std::byte>> receive(error_code& ec, std::size_t tls_buffer = 16384);
  /// Writes every byte of `bufs` (gathered: one writev on a plain socket; with TLS the buffers
  /// are written as they come, so callers pass few large ones).
  awaitable<std::size_t> write(std::span<const asio::const_buffer> bufs, error_code& ec);
  /// Closes the socket (no TLS close_notify: the peer sees end of stream). Idempotent.
  void close();
  bool is_open() { return socket().is_open(); }

 private:
  tcp::socket socket_;
  std::unique_ptr<ssl::stream<tcp::socket>> tls_;
  std::vector<std::byte> tls_buf_;
  bool more_ = false;  // the last receive filled the buffer: read again before waiting
};

}  // namespace zdm::net
