// zdm-testcluster: an in-memory CQL server speaking native protocol v3/v4, serving every node of
// one cluster from one process (one listening socket per node address, one shared data store).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/program_options.hpp>
#include <iostream>
#include <sstream>

#include "tests/cluster/server.h"
#include "tests/cluster/store.h"

namespace po = boost::program_options;
using namespace zdm::testcluster;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ClusterInfo info;
  std::string nodes, log_level;
  int port = 9042;
  po::options_description desc("zdm-testcluster: an in-memory CQL cluster (native protocol v3/v4)");
  desc.add_options()("help,h", "show this help")(
      "cluster-name", po::value(&info.name)->default_value("zdm-testcluster"),
      "cluster_name reported in system.local")(
      "nodes", po::value(&nodes)->required(),
      "comma-separated node addresses, e.g. 127.0.2.1,127.0.2.2,127.0.2.3")(
      "port", po::value(&port)->default_value(9042), "CQL port on every node address")(
      "datacenter", po::value(&info.datacenter)->default_value("dc1"), "data_center of every node")(
      "release-version", po::value(&info.release_version)->default_value("3.11.16"),
      "release_version reported to drivers")("log-level",
                                             po::value(&log_level)->default_value("info"),
                                             "trace, debug, info, warn, error, critical, off");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc << "\n";
      return 0;
    }
    po::notify(vm);
    if (port <= 0 || port > 65535) throw std::invalid_argument("--port must be 1-65535");
    info.nodes = make_nodes(split(nodes));
    if (info.nodes.empty()) throw std::invalid_argument("--nodes names no address");
  } catch (const std::exception& e) {
    std::cerr << "zdm-testcluster: " << e.what() << "\n" << desc << "\n";
    return 2;
  }

  auto logger = spdlog::stderr_color_mt("zdm-testcluster");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  boost::asio::io_context ioc(1);
  Store store(info);
  Server server(ioc, store, static_cast<uint16_t>(port));
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen: {}", e.what());
    return 1;
  }
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    server.stop();
  });
  ioc.run();
  spdlog::info("stopped");
  return 0;
}
