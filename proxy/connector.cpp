#include "proxy/connector.h"

#include <spdlog/spdlog.h>

namespace zdm::proxy {

std::string tls_mismatch_advice(Cluster c, const std::string& node, net::TlsMismatch m) {
  const std::string p = c == Cluster::kOrigin ? "origin" : "target";
  const std::string who = std::string(cluster_name(c)) + " node " + node;
  switch (m) {
    case net::TlsMismatch::kNone:
      break;
    case net::TlsMismatch::kNodeWantsTls:
      return who + " answered with TLS: set " + p + "_tls_server_ca_path (and " + p +
             "_tls_client_cert_path, " + p +
             "_tls_client_key_path for mutual TLS) in the proxy configuration";
    case net::TlsMismatch::kNodeNotTls:
      return who + " does not speak TLS (it answered the TLS handshake in plain CQL): remove " + p +
             "_tls_server_ca_path, " + p + "_tls_client_cert_path and " + p +
             "_tls_client_key_path from the proxy configuration, or turn on client encryption on "
             "the node";
  }
  return "";
}

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

awaitable<bool> Connector::open(const tcp::endpoint& ep, const std::string& host,
                                const net::HopSettings& hop, std::string& why) {
  if (co_await NodeConnection::open(ep, host, hop, why)) co_return true;
  if (hop.tls) {
    const auto m = co_await diagnose_tls(ep, hop, std::chrono::milliseconds(2000));
    if (m != net::TlsMismatch::kNone) why += "; " + tls_mismatch_advice(cluster_, node_, m);
  }
  co_return false;
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
    ++reads_;
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
