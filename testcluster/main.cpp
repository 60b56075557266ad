// zdm-testcluster: an in-memory CQL server speaking the native protocol (v3, v4, v5 and the DSE
// versions when asked), serving every node of one cluster from one process (one listening
// socket per node address, one shared data store). It demands what Cassandra demands:
// authentication, TLS and compression as configured, per-node prepared statements on request;
// it fails on demand through its fault admin (--admin, admin.h) and keeps its rows across
// restarts with --data-dir.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>
#include <iostream>
#include <sstream>

#include "common/net/tls.h"
#include "testcluster/admin.h"
#include "testcluster/server.h"
#include "testcluster/store.h"

namespace po = boost::program_options;
using namespace zdm::testcluster;

namespace {

constexpr const char* kAdminHelp = R"(
Fault admin (--admin ADDRESS:PORT), HTTP with JSON in and out; <node> is an address or 1..N:
  GET    /                       every node: up, connections, prepared statements, faults
  GET    /nodes                  [{"address": ..., "up": ...}]
  POST   /nodes/<node>/stop      node down (listener and connections closed)
  POST   /nodes/<node>/start     node up again, prepared statements forgotten (a restart)
  POST   /nodes/<node>/restart   stop, then start
  POST   /nodes/<node>/drop      close the node's connections now
  GET|POST|DELETE /nodes/<node>/faults   show, merge (JSON body), clear the node's faults
  POST|DELETE     /faults                merge into / clear every node's faults
Faults, each with optional "fraction" (0..1), "statements" (all|reads|writes), "opcodes":
  {"latency": {"ms": 200}}  or {"latency": {"min_ms": 50, "max_ms": 150}}
  {"error": {"type": "write_timeout|read_timeout|unavailable|overloaded|server_error|
             is_bootstrapping", "fraction": 0.5, "statements": "writes"}}
  {"drop": {}}   {"silence": {}}   {"garbage": {"mode": "body|header"}}   (null removes one)
e.g. curl -X POST http://127.0.2.1:9100/nodes/2/faults -d '{"latency": {"ms": 100}}'
)";

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<uint8_t> parse_versions(const std::string& list) {
  std::vector<uint8_t> out;
  for (const auto& v : split(list)) {
    if (v == "3" || v == "4" || v == "5") {
      out.push_back(static_cast<uint8_t>(v[0] - '0'));
    } else if (v == "dse1" || v == "DSE_V1") {
      out.push_back(0x41);
    } else if (v == "dse2" || v == "DSE_V2") {
      out.push_back(0x42);
    } else {
      throw std::invalid_argument("--protocol-versions: unknown version '" + v +
                                  "' (3, 4, 5, dse1, dse2)");
    }
  }
  if (out.empty()) throw std::invalid_argument("--protocol-versions names no version");
  return out;
}

std::vector<zdm::cql::Compression> parse_compression_list(const std::string& list) {
  std::vector<zdm::cql::Compression> out;
  if (list == "none") return out;
  for (const auto& name : split(list)) {
    auto c = zdm::cql::parse_compression(name);
    if (!c || *c == zdm::cql::Compression::kNone)
      throw std::invalid_argument("--compression: unknown algorithm '" + name +
                                  "' (lz4, snappy or none)");
    out.push_back(*c);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ClusterInfo info;
  ServerOptions sopts;
  std::string nodes, log_level, versions, compression, authenticator, admin, data_dir;
  std::vector<std::string> users;
  zdm::net::TlsFiles tls{"", "", "", "--tls-ca", "--tls-cert", "--tls-key"};
  bool require_client_auth = false;
  bool bench_backend = false;
  int port = 9042;
  po::options_description desc(
      "zdm-testcluster: an in-memory CQL cluster (native protocol v3/v4/v5, DSE_V1/V2)");
  desc.add_options()("help,h", "show this help")(
      "cluster-name", po::value(&info.name)->default_value("zdm-testcluster"),
      "cluster_name reported in system.local")(
      "nodes", po::value(&nodes)->required(),
      "comma-separated node addresses, e.g. 127.0.2.1,127.0.2.2,127.0.2.3")(
      "port", po::value(&port)->default_value(9042), "CQL port on every node address")(
      "datacenter", po::value(&info.datacenter)->default_value("dc1"), "data_center of every node")(
      "release-version", po::value(&info.release_version)->default_value("4.1.5"),
      "release_version reported to drivers")(
      "dse-version", po::value(&info.dse_version),
      "report this DSE version (e.g. 6.8.50) in system.local/peers, as DSE nodes do")(
      "protocol-versions", po::value(&versions)->default_value("3,4,5"),
      "protocol versions spoken: 3, 4, 5, dse1, dse2 (others are refused with PROTOCOL_ERROR)")(
      "compression", po::value(&compression)->default_value("lz4,snappy"),
      "compression offered in SUPPORTED and accepted in STARTUP: lz4, snappy, or none")(
      "auth", po::value(&users)->composing(),
      "USER:PASSWORD that may log in (repeatable); turns authentication on")(
      "authenticator", po::value(&authenticator)->default_value("password"),
      "with --auth: password (PasswordAuthenticator) or dse (DseAuthenticator)")(
      "tls-cert", po::value(&tls.cert_path), "PEM certificate: the CQL port speaks TLS only")(
      "tls-key", po::value(&tls.key_path), "PEM private key of --tls-cert")(
      "tls-ca", po::value(&tls.ca_path), "PEM CA that client certificates must chain to")(
      "tls-require-client-auth", po::bool_switch(&require_client_auth),
      "refuse clients without a certificate signed by --tls-ca")(
      "prepared-per-node", po::bool_switch(&info.prepared_per_node),
      "each node keeps its own prepared statements, as real nodes do (a restart forgets them)")(
      "admin", po::value(&admin), "ADDRESS:PORT of the fault admin (HTTP/JSON; endpoints below)")(
      "bench-backend", po::bool_switch(&bench_backend),
      "benchmarks only: prepared 'SELECT v FROM t WHERE k = ?' and 'INSERT INTO t (k, v) VALUES "
      "(?, ?)' answered from a hash map, with no CQL parsing per request (tests/bench)")(
      "data-dir", po::value(&data_dir),
      "keep schema and rows in DIR (snapshot + append log) across restarts")(
      "log-level", po::value(&log_level)->default_value("info"),
      "trace, debug, info, warn, error, critical, off");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc << kAdminHelp;
      return 0;
    }
    po::notify(vm);
    if (port <= 0 || port > 65535) throw std::invalid_argument("--port must be 1-65535");
    sopts.port = static_cast<uint16_t>(port);
    info.native_port = port;
    info.nodes = make_nodes(split(nodes));
    if (info.nodes.empty()) throw std::invalid_argument("--nodes names no address");
    sopts.versions = parse_versions(versions);
    sopts.compression = parse_compression_list(compression);
    for (const auto& u : users) {
      auto colon = u.find(':');
      if (colon == std::string::npos || colon == 0)
        throw std::invalid_argument("--auth expects USER:PASSWORD, got '" + u + "'");
      sopts.users[u.substr(0, colon)] = u.substr(colon + 1);
    }
    if (!users.empty()) {
      if (authenticator == "password") {
        sopts.authenticator = Authenticator::kPassword;
      } else if (authenticator == "dse") {
        sopts.authenticator = Authenticator::kDse;
      } else {
        throw std::invalid_argument("--authenticator must be password or dse");
      }
    }
    if (bench_backend) sopts.bench = std::make_shared<BenchBackend>();
    if (!tls.cert_path.empty() || !tls.key_path.empty() || require_client_auth)
      sopts.tls = zdm::net::make_server_context(tls, require_client_auth);
  } catch (const std::exception& e) {
    std::cerr << "zdm-testcluster: " << e.what() << "\n";
    return 2;
  }

  auto logger = spdlog::stderr_color_mt("zdm-testcluster");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  boost::asio::io_context ioc(1);
  Store store(info);
  if (!data_dir.empty()) {
    try {
      store.open_data_dir(data_dir);
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
      return 1;
    }
  }
  Server server(ioc, store, std::move(sopts));
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen: {}", e.what());
    return 1;
  }
  std::unique_ptr<Admin> admin_server;
  if (!admin.empty()) {
    auto colon = admin.rfind(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("--admin needs ADDRESS:PORT");
      int admin_port = std::stoi(admin.substr(colon + 1));
      if (admin_port <= 0 || admin_port > 65535)
        throw std::invalid_argument("--admin port must be 1-65535");
      admin_server = std::make_unique<Admin>(ioc, admin.substr(0, colon),
                                             static_cast<uint16_t>(admin_port), server, store);
    } catch (const std::exception& e) {
      spdlog::critical("cannot serve the fault admin on {}: {}", admin, e.what());
      return 1;
    }
    admin_server->start();
    spdlog::info("fault admin on http://{}/", admin);
  }
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    if (admin_server) admin_server->stop();
    server.stop();
  });
  ioc.run();
  spdlog::info("stopped");
  return 0;
}
