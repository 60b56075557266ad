#include "tests/cluster/server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <deque>

#include "proxy/cql/messages.h"

namespace zdm::testcluster {

namespace asio = boost::asio;
using asio::ip::tcp;
using cql::Bytes;
using cql::Opcode;
// Boost 1.74 has no as_tuple: redirect_error gives the same "errors as values" (STYLE §2).
auto use_ec(boost::system::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

namespace {

void log_failure(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{} failed: {}", what, ex.what());
  }
}

Bytes error_frame(uint8_t version, int16_t stream, const cql::ErrorMsg& e) {
  return cql::encode_message(version, true, stream, Opcode::kError, e);
}

}  // namespace

/// One client connection: the reader decodes and answers frames in order of arrival, the writer
/// alone writes (gathered), fed through `queue_` and woken by `signal_` (STYLE §2).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, tcp::socket socket, std::size_t node)
      : server_(server), socket_(std::move(socket)), signal_(socket_.get_executor()), node_(node) {
    signal_.expires_at(asio::steady_timer::time_point::max());
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void start() {
    server_.add(this);
    auto self = shared_from_this();
    asio::co_spawn(socket_.get_executor(), self->reader(),
                   [self](std::exception_ptr e) { log_failure(e, "connection reader"); });
    asio::co_spawn(socket_.get_executor(), self->writer(),
                   [self](std::exception_ptr e) { log_failure(e, "connection writer"); });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    server_.remove(this);
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    signal_.cancel();
  }

  void deliver(Bytes frame) {
    if (closed_) return;
    queue_.push_back(std::move(frame));
    signal_.cancel_one();
  }

  bool registered_for_schema() const { return registered_schema_; }
  uint8_t version() const { return version_; }
  std::size_t node() const { return node_; }

 private:
  asio::awaitable<void> reader() {
    cql::FrameDecoder decoder;
    std::array<std::byte, 64 * 1024> buf;
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = co_await socket_.async_read_some(asio::buffer(buf), use_ec(ec));
      if (ec) {
        if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
            ec != asio::error::connection_reset)
          spdlog::debug("{}: read: {}", peer_, ec.message());
        break;
      }
      decoder.feed(cql::BytesView(buf.data(), n));
      std::vector<cql::SchemaChange> events;
      bool corrupt = false;
      try {
        cql::Frame frame;
        while (decoder.next(frame)) {
          queue_.push_back(handle(frame, events));
        }
      } catch (const cql::ProtocolError& e) {
        spdlog::warn("{}: corrupt frame header, closing: {}", peer_, e.what());
        corrupt = true;
      }
      if (!queue_.empty()) signal_.cancel_one();
      for (const auto& ev : events) server_.broadcast(ev);
      if (corrupt) {
        // Let the writer flush what was answered, then close.
        close_after_flush_ = true;
        signal_.cancel_one();
        co_return;
      }
    }
    close();
  }

  asio::awaitable<void> writer() {
    while (!closed_) {
      if (queue_.empty()) {
        if (close_after_flush_) break;
        signal_.expires_at(asio::steady_timer::time_point::max());
        boost::system::error_code ec;
        co_await signal_.async_wait(use_ec(ec));
        continue;
      }
      std::vector<Bytes> batch(std::make_move_iterator(queue_.begin()),
                               std::make_move_iterator(queue_.end()));
      queue_.clear();
      std::vector<asio::const_buffer> bufs;
      bufs.reserve(batch.size());
      for (const auto& b : batch) bufs.push_back(asio::buffer(b));
      boost::system::error_code ec;
      co_await asio::async_write(socket_, bufs, use_ec(ec));
      if (ec) break;
    }
    close();
  }

  // Answers one request frame (STYLE §3: errors become ERROR frames on the same stream).
  Bytes handle(const cql::Frame& f, std::vector<cql::SchemaChange>& events) {
    const cql::Header& h = f.header;
    if (h.version != 3 && h.version != 4) {
      uint8_t v = h.version <= 5 ? h.version : 4;
      return cql::encode_error(v, h.stream, cql::ErrorCode::kProtocolError,
                               "Invalid or unsupported protocol version (" +
                                   std::to_string(h.version) +
                                   "); supported versions are (3/v3, 4/v4)");
    }
    uint8_t v = h.version;
    version_ = v;
    if (h.response)
      return cql::encode_error(v, h.stream, cql::ErrorCode::kProtocolError,
                               "Invalid frame: response direction bit set on a request");
    if (h.flags & cql::flag::kCompression)
      return cql::encode_error(v, h.stream, cql::ErrorCode::kProtocolError,
                               "Compressed frame received but no compression was negotiated");
    try {
      cql::Reader r(f.body);
      cql::skip_request_prefix(r, h.flags);
      Store& store = server_.store();
      auto respond = [&](Outcome out) {
        if (out.event) events.push_back(*out.event);
        if (auto* e = std::get_if<cql::ErrorMsg>(&out.response))
          return error_frame(v, h.stream, *e);
        return cql::encode_message(v, true, h.stream, Opcode::kResult,
                                   std::get<cql::ResultMsg>(out.response));
      };
      switch (h.opcode) {
        case Opcode::kOptions:
          return cql::encode_message(
              v, true, h.stream, Opcode::kSupported,
              cql::SupportedMsg{{{"CQL_VERSION", {server_.store().info().cql_version}},
                                 {"COMPRESSION", {}},
                                 {"PROTOCOL_VERSIONS", {"3/v3", "4/v4"}}}});
        case Opcode::kStartup: {
          auto m = cql::StartupMsg::decode(r);
          if (auto it = m.options.find("COMPRESSION"); it != m.options.end() && !it->second.empty())
            return cql::encode_error(v, h.stream, cql::ErrorCode::kProtocolError,
                                     "Unknown compression algorithm: " + it->second);
          return cql::encode_empty(v, true, h.stream, Opcode::kReady);
        }
        case Opcode::kRegister: {
          auto m = cql::RegisterMsg::decode(r);
          for (const auto& e : m.events)
            if (e == "SCHEMA_CHANGE") registered_schema_ = true;
          return cql::encode_empty(v, true, h.stream, Opcode::kReady);
        }
        case Opcode::kQuery:
          return respond(store.query(node_, session_, cql::QueryMsg::decode(r, v)));
        case Opcode::kPrepare:
          return respond(store.prepare(node_, session_, cql::PrepareMsg::decode(r, v)));
        case Opcode::kExecute:
          return respond(store.execute(node_, session_, cql::ExecuteMsg::decode(r, v)));
        case Opcode::kBatch:
          return respond(store.batch(node_, session_, cql::BatchMsg::decode(r, v)));
        case Opcode::kAuthResponse:
          return cql::encode_error(v, h.stream, cql::ErrorCode::kProtocolError,
                                   "Unexpected message AUTH_RESPONSE, authentication is disabled");
        default:
          return cql::encode_error(
              v, h.stream, cql::ErrorCode::kProtocolError,
              "Invalid or unsupported request opcode " + cql::opcode_name(h.opcode));
      }
    } catch (const cql::ProtocolError& e) {
      return cql::encode_error(v, h.stream, cql::ErrorCode::kProtocolError, e.what());
    } catch (const std::exception& e) {
      spdlog::error("{}: {} failed: {}", peer_, cql::opcode_name(h.opcode), e.what());
      return cql::encode_error(v, h.stream, cql::ErrorCode::kServerError, e.what());
    }
  }

  Server& server_;
  tcp::socket socket_;
  asio::steady_timer signal_;
  std::size_t node_;
  std::string peer_ = "?";
  Session session_;
  std::deque<Bytes> queue_;
  uint8_t version_ = 4;
  bool registered_schema_ = false;
  bool closed_ = false;
  bool close_after_flush_ = false;
};

Server::Server(asio::io_context& ioc, Store& store, uint16_t port)
    : ioc_(ioc), store_(store), port_(port) {}

void Server::start() {
  acceptors_.resize(store_.info().nodes.size());
  for (std::size_t i = 0; i < acceptors_.size(); ++i) listen(i);
}

void Server::listen(std::size_t i) {
  const auto& node = store_.info().nodes.at(i);
  tcp::endpoint ep(asio::ip::make_address(node.address), port_);
  auto acc = std::make_unique<tcp::acceptor>(ioc_);
  acc->open(ep.protocol());
  acc->set_option(tcp::acceptor::reuse_address(true));
  acc->bind(ep);
  acc->listen();
  spdlog::info("node {} of cluster '{}' listening on {}:{}", i + 1, store_.info().name,
               node.address, port_);
  tcp::acceptor* a = acc.get();
  acceptors_[i] = std::move(acc);
  asio::co_spawn(
      ioc_,
      [this, a, i]() -> asio::awaitable<void> {
        for (;;) {
          boost::system::error_code ec;
          tcp::socket socket = co_await a->async_accept(use_ec(ec));
          if (ec) {
            if (ec == asio::error::operation_aborted || stopping_ || !a->is_open()) co_return;
            spdlog::warn("accept on {}: {}", store_.info().nodes[i].address, ec.message());
            continue;
          }
          socket.set_option(tcp::no_delay(true));
          std::make_shared<Connection>(*this, std::move(socket), i)->start();
        }
      },
      [](std::exception_ptr e) { log_failure(e, "accept loop"); });
}

void Server::stop_node(std::size_t node) {
  auto& a = acceptors_.at(node);
  if (!a) return;
  boost::system::error_code ec;
  a->close(ec);
  // The accept loop still refers to the acceptor until it sees operation_aborted.
  asio::post(ioc_, [old = std::shared_ptr<tcp::acceptor>(std::move(a))] {});
  auto conns = connections_;
  for (Connection* c : conns)
    if (c->node() == node) c->close();
  spdlog::warn("node {} ({}) stopped by the fault admin", node + 1,
               store_.info().nodes[node].address);
}

void Server::start_node(std::size_t node) {
  if (acceptors_.at(node)) return;
  listen(node);
}

void Server::stop() {
  stopping_ = true;
  for (auto& a : acceptors_) {
    boost::system::error_code ec;
    if (a) a->close(ec);
  }
  auto conns = connections_;
  for (Connection* c : conns) c->close();
}

void Server::broadcast(const cql::SchemaChange& change) {
  cql::EventMsg ev;
  ev.type = "SCHEMA_CHANGE";
  ev.schema_change = change;
  for (Connection* c : connections_)
    if (c->registered_for_schema())
      c->deliver(cql::encode_message(c->version(), true, -1, Opcode::kEvent, ev));
}

}  // namespace zdm::testcluster
