// Asio conventions of the proxy (STYLE §2, rules 5-8): errors as values via redirect_error,
// one writer coroutine per socket fed by a queue and a timer signal.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <deque>
#include <functional>

#include "proxy/cql/frame.h"

namespace zdm::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
template <class T = void>
using awaitable = asio::awaitable<T>;

/// Completion token that stores the error in `ec` instead of throwing.
inline auto nothrow(boost::system::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

/// Queue of whole frames for one socket and the coroutine that writes them: every frame queued
/// while a write is in progress goes out in the next gathered write (one writev for many frames).
class FrameWriter {
 public:
  FrameWriter(tcp::socket& socket) : socket_(socket), signal_(socket.get_executor()) {
    signal_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  void push(cql::Bytes frame) {
    queue_.push_back(std::move(frame));
    signal_.cancel_one();
  }
  /// Stop after the queue is drained.
  void close() {
    closing_ = true;
    signal_.cancel();
  }
  bool idle() const { return queue_.empty() && !writing_; }
  std::size_t queued() const { return queue_.size(); }

  /// The writer coroutine. Returns when closed and drained, or on a write error.
  awaitable<boost::system::error_code> run() {
    std::vector<cql::Bytes> batch;
    std::vector<asio::const_buffer> buffers;
    for (;;) {
      if (queue_.empty()) {
        if (closing_) co_return boost::system::error_code{};
        boost::system::error_code ec;
        co_await signal_.async_wait(nothrow(ec));
        continue;
      }
      batch.clear();
      buffers.clear();
      std::size_t bytes = 0;
      while (!queue_.empty() && batch.size() < 256 && bytes < (1u << 20)) {
        bytes += queue_.front().size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      for (const auto& f : batch) buffers.emplace_back(f.data(), f.size());
      boost::system::error_code ec;
      writing_ = true;
      co_await asio::async_write(socket_, buffers, nothrow(ec));
      writing_ = false;
      if (ec) co_return ec;
    }
  }

 private:
  tcp::socket& socket_;
  asio::steady_timer signal_;
  std::deque<cql::Bytes> queue_;
  bool closing_ = false;
  bool writing_ = false;
};

}  // namespace zdm::proxy
