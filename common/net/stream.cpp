#include "common/net/stream.h"

namespace zdm::net {

void Stream::use_tls(ssl::context& ctx) {
  tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket_), ctx);
}

awaitable<error_code> Stream::handshake(ssl::stream_base::handshake_type type,
                                        std::chrono::milliseconds timeout) {
  if (!tls_) co_return error_code{};
  // The watchdog's handler may run after this coroutine ended (it fired just as the handshake
  // completed): it only touches `state`, which it shares.
  struct State {
    bool done = false, expired = false;
  };
  auto state = std::make_shared<State>();
  asio::steady_timer watchdog(socket().get_executor());
  watchdog.expires_after(timeout);
  watchdog.async_wait([this, state](error_code e) {
    if (e || state->done) return;
    state->expired = true;
    error_code ignored;
    socket().close(ignored);
  });
  error_code ec;
  co_await tls_->async_handshake(type, nothrow(ec));
  state->done = true;
  watchdog.cancel();
  if (state->expired) ec = asio::error::timed_out;
  co_return ec;
}

awaitable<std::size_t> Stream::read_some(asio::mutable_buffer buf, error_code& ec) {
  if (tls_) co_return co_await tls_->async_read_some(buf, nothrow(ec));
  co_return co_await socket_.async_read_some(buf, nothrow(ec));
}

awaitable<std::size_t> Stream::write(std::span<const asio::const_buffer> bufs, error_code& ec) {
  if (tls_) co_return co_await asio::async_write(*tls_, bufs, nothrow(ec));
  co_return co_await asio::async_write(socket_, bufs, nothrow(ec));
}

awaitable<std::span<const std::byte>> Stream::receive(error_code& ec, std::size_t tls_buffer) {
  ec = {};
  if (tls_) {
    if (tls_buf_.size() != tls_buffer) tls_buf_.resize(tls_buffer);
    std::size_t n = co_await tls_->async_read_some(asio::buffer(tls_buf_), nothrow(ec));
    co_return std::span<const std::byte>(tls_buf_.data(), ec ? 0 : n);
  }
  thread_local std::vector<std::byte> shared(64 * 1024);
  if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
  for (;;) {
    if (!more_) {
      co_await socket_.async_wait(tcp::socket::wait_read, nothrow(ec));
      if (ec) co_return std::span<const std::byte>();
    }
    std::size_t n = socket_.read_some(asio::buffer(shared), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      more_ = false;
      ec = {};
      continue;
    }
    if (ec) co_return std::span<const std::byte>();
    more_ = n == shared.size();
    co_return std::span<const std::byte>(shared.data(), n);
  }
}

void Stream::close() {
  error_code ec;
  tcp::socket& s = socket();
  if (!s.is_open()) return;
  s.shutdown(tcp::socket::shutdown_both, ec);
  s.close(ec);
}

}  // namespace zdm::net
