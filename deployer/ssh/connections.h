// One connection per host per run: the lock, the tasks, the audit trail and the release of a
// run share the host's transport instead of each opening its own SSH session.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ssh/transport.h"

namespace zdm::deploy {

class HostConnections {
 public:
  // `connector` opens the transports (default_connector() when null).
  explicit HostConnections(std::shared_ptr<Connector> connector = nullptr);
  ~HostConnections();
  HostConnections(const HostConnections&) = delete;
  HostConnections& operator=(const HostConnections&) = delete;

  // The host's transport, opened with `params` on first use and kept for the run. A host whose
  // parameters changed since (another ansible_host, port, user, key, bastion), or whose kept
  // connection is gone (Transport::alive(), checked when a transport is handed out again), is
  // reconnected. Throws UnreachableError. Thread-safe across hosts; one host's transport is used
  // by one thread at a time (the engine's rule), and stays valid until the next get(host),
  // drop(host) or the destructor.
  Transport& get(const std::string& host, const ConnectParams& params);
  // Forgets the host's transport (its connection was lost): the next get() reconnects.
  void drop(const std::string& host);
  // The connector, for transports outside the cache (a task delegated to localhost).
  Connector& connector() const { return *connector_; }
  // Transports opened so far (reconnections count), for tests and measurements.
  int connects() const;

 private:
  struct Entry {
    std::string key;  // the parameters it was opened with
    std::unique_ptr<Transport> transport;
  };
  std::shared_ptr<Connector> connector_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> hosts_;
  int connects_ = 0;
};

}  // namespace zdm::deploy
