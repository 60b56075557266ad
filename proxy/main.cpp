// zdm-proxy: the CQL proxy for zero-downtime migrations from origin to target.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <iostream>
#include <map>

#include "common/cql/notation.h"
#include "proxy/config.h"
#include "proxy/proxy.h"

extern char** environ;
const char* zdm_build_commit();  // generated at build time

namespace po = boost::program_options;

namespace {

spdlog::level::level_enum to_spdlog(const std::string& level) {
  if (level == "TRACE") return spdlog::level::trace;
  if (level == "DEBUG") return spdlog::level::debug;
  if (level == "WARN" || level == "WARNING") return spdlog::level::warn;
  if (level == "ERROR") return spdlog::level::err;
  if (level == "FATAL" || level == "PANIC") return spdlog::level::critical;
  return spdlog::level::info;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description opts("zdm-proxy options");
  opts.add_options()("help,h", "print this help")("version", "print the version and exit")(
      "config", po::value<std::string>(),
      "YAML configuration file with ZDM's keys; without it, ZDM_* environment variables are read")(
      "check-config", po::value<std::string>(),
      "validate this YAML configuration (keys, values, TLS files) and exit: 0 when it would "
      "start, 2 with one line naming the key otherwise");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "zdm-proxy: " << e.what() << "\n" << opts;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "zdm-proxy " << ZDM_VERSION << " (commit " << zdm_build_commit() << ")\n";
    return 0;
  }
  if (vm.count("check-config")) {
    const std::string path = vm["check-config"].as<std::string>();
    try {
      auto c = zdm::proxy::load_config_file(path);
      zdm::proxy::check_tls_files(c);
      for (const auto& w : c.warnings) std::cerr << "warning: " << w << "\n";
      std::cout << path << ": ok\n";
      return 0;
    } catch (const std::exception& e) {
      std::cerr << e.what() << "\n";
      return 2;
    }
  }
  auto logger = spdlog::stderr_logger_mt("zdm-proxy");
  spdlog::set_default_logger(logger);
  // UTC whatever the host's timezone: `zdm-deploy logs --since` and collect-logs compare and
  // merge the hosts' lines by this text.
  spdlog::set_pattern("time=\"%Y-%m-%dT%H:%M:%S.%e%z\" level=%l msg=\"%v\"",
                      spdlog::pattern_time_type::utc);
  zdm::proxy::Config config;
  try {
    if (vm.count("config")) {
      config = zdm::proxy::load_config_file(vm["config"].as<std::string>());
    } else {
      std::map<std::string, std::string> env;
      for (char** e = environ; *e; ++e) {
        std::string kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
      config = zdm::proxy::load_config_env(env);
    }
  } catch (const zdm::proxy::ConfigError& e) {
    spdlog::critical("Invalid configuration: {}", e.what());
    return 2;
  }
  spdlog::set_level(to_spdlog(config.log_level));
  spdlog::info("Starting ZDM proxy version {}", ZDM_VERSION);
  for (const auto& w : config.warnings) spdlog::warn("Configuration: {}", w);
  spdlog::info("Parsed configuration: {}", config.to_log_json());
  if (config.target_consistency_level) {
    const std::string level = zdm::cql::consistency_name(
        static_cast<zdm::cql::Consistency>(*config.target_consistency_level));
    spdlog::warn(
        "target_consistency_level is {}: every QUERY, EXECUTE and BATCH goes to TARGET at {}, "
        "whatever level the client asked for (ORIGIN keeps the client's). TARGET can miss writes "
        "that some of its replicas did not take: validate (zdm-data validate) and repair TARGET "
        "before making it the primary cluster",
        level, level);
  }
  return zdm::proxy::run_proxy(config);
}
