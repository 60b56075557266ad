// The zdm-proxy program: HTTP endpoint, control connections, listener and worker threads,
// graceful shutdown on SIGINT/SIGTERM.
#pragma once

#include <string>

#include "proxy/config.h"

namespace zdm::proxy {

/// Readiness JSON as ZDM serves it on /health/readiness (datastax/zdm-proxy proxy/pkg/health); sets
/// `ready`. Beyond ZDM's keys, a cluster that is not up has a "Reason" ("DOWN: ...", "STALLED:
/// ..."), and so has the whole when not ready because of a cluster ("TARGET STALLED: ..."), at
/// start-up too.
struct ReadinessInput {
  bool started = false;
  bool shutting_down = false;
  bool draining = false;  // handing over before a restart (POST /admin/drain)
  struct Side {
    std::string addr;
    int failures = 0;
    bool up = false;
    std::string reason;  // why not up; "" when up or not known yet
  } origin, target;
  int threshold = 1;
};
std::string readiness_json(const ReadinessInput& in, bool& ready);

/// Loads every TLS file the configuration names, as start-up would. Throws net::TlsError
/// ("origin_tls_server_ca_path: cannot read /x: No such file or directory").
void check_tls_files(const Config& config);

/// Runs the proxy until SIGINT/SIGTERM; returns the process exit code.
int run_proxy(const Config& config);

}  // namespace zdm::proxy
