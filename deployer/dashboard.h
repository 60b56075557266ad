// `zdm-deploy dashboard`: a page that draws the shipped Grafana dashboards from the inventory's
// Prometheus, for operators without Grafana (and the sandbox).
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"

namespace zdm::deploy {

// One file of the page, embedded at build time (embed_assets.cmake).
struct Asset {
  const char* path;  // as requested: "/", "/static/uPlot.iife.min.js", ...
  const char* content_type;
  const unsigned char* data;
  std::size_t size;
};
const std::vector<Asset>& dashboard_assets();

// A dashboard file: its uid, title and text.
struct DashboardFile {
  std::string uid, title, text;
};

// Reads every *.json of `dir` as a Grafana dashboard (needs uid, title and panels). The ZDM
// Proxy, Migration and Proxy hosts dashboards come first, then the others by title. Throws
// std::runtime_error naming the file.
std::vector<DashboardFile> load_dashboards(const std::string& dir);

// "15s", "1m", "1h30m", "500ms" → seconds; throws std::invalid_argument.
double parse_duration(const std::string& text);

struct DashboardOptions {
  std::string listen = "127.0.0.1:3000";
  std::string dashboards_dir;  // default: <source>/monitoring/grafana/dashboards
};

// Serves the page on options.listen until SIGINT/SIGTERM. Prometheus is where
// deploy_monitoring.yml puts it for the inventory (prometheus_web_listen_address); the page's
// /api/v1/ requests are passed to it. Returns an ExitCode.
int dashboard(const CommonOptions& opts, const DashboardOptions& options, std::ostream& out,
              std::ostream& err);

}  // namespace zdm::deploy
