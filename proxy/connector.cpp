#include "proxy/connector.h"

#include <spdlog/spdlog.h>

namespace zdm::proxy {

Connector::Connector(asio::io_context& ioc, Role role, Cluster cluster, int max_stream_ids)
    : NodeConnection(ioc), role_(role), cluster_(cluster), ids_(max_stream_ids) {}

std::optional<int16_t> Connector::acquire(uint64_t request_id) {
  auto s = ids_.acquire(request_id);
  if (s && metrics) metrics->used_stream_ids->add();
  return s;
}

uint64_t Connector::release(int16_t stream) {
  uint64_t id = ids_.release(stream);
  if (id && metrics) metrics->used_stream_ids->sub();
  return id;
}

void Connector::on_write_error(const net::error_code&) {
  if (auto l = listener.lock()) l->on_connector_closed(*this);
}

awaitable<void> Connector::read_loop(std::shared_ptr<ConnectorListener> listener,
                                     std::size_t buffer_size) {
  for (;;) {
    if (listener->client_full()) co_await listener->client_writable();
    net::error_code ec;
    auto data = co_await stream_.receive(ec, buffer_size);
    if (ec) break;
    try {
      frames_.feed(data);
      cql::Header h;
      cql::Bytes frame;
      while (frames_.next_raw(h, frame)) listener->on_cluster_frame(*this, h, std::move(frame));
    } catch (const cql::ProtocolError& e) {
      spdlog::error("Corrupt frame from {} node {}: {}", cluster_name(cluster_), node_, e.what());
      break;
    }
  }
  listener->on_connector_closed(*this);
}

}  // namespace zdm::proxy
