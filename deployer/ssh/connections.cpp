#include "ssh/connections.h"

#include <fmt/format.h>

namespace zdm::deploy {
namespace {

// Everything connect() uses from the parameters, as one string.
std::string params_key(const ConnectParams& p) {
  std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|", p.name, p.host, p.port, p.user,
                                p.identities_only, p.identity_agent, p.known_hosts,
                                p.accept_new_host_keys, p.timeout_seconds, p.local);
  for (auto& f : p.identity_files) key += f + ",";
  for (auto& j : p.jumps) key += "[" + params_key(j) + "]";
  return key;
}

}  // namespace

HostConnections::HostConnections(std::shared_ptr<Connector> connector)
    : connector_(connector ? std::move(connector) : default_connector()) {}

HostConnections::~HostConnections() = default;

Transport& HostConnections::get(const std::string& host, const ConnectParams& params) {
  std::string key = params_key(params);
  Transport* kept = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = hosts_.find(host);
    if (it != hosts_.end() && it->second.transport && it->second.key == key)
      kept = it->second.transport.get();
  }
  // Only this host's thread uses its transport: checking it needs no lock.
  if (kept && kept->alive()) return *kept;
  // Connecting takes time: other hosts go on meanwhile (this host's thread is the only user).
  std::unique_ptr<Transport> t = connector_->connect(params);
  std::lock_guard lock(mu_);
  ++connects_;
  Entry& e = hosts_[host];
  e.key = key;
  e.transport = std::move(t);
  return *e.transport;
}

void HostConnections::drop(const std::string& host) {
  std::unique_ptr<Transport> old;
  {
    std::lock_guard lock(mu_);
    auto it = hosts_.find(host);
    if (it == hosts_.end()) return;
    old = std::move(it->second.transport);
    hosts_.erase(it);
  }
}

int HostConnections::connects() const {
  std::lock_guard lock(mu_);
  return connects_;
}

}  // namespace zdm::deploy
