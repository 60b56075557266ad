#include "dashboard.h"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "common/http/server.h"
#include "engine/executor.h"
#include "engine/plan.h"
#include "engine/playbook.h"
#include "http.h"
#include "inventory/inventory.h"
#include "template.h"
#include "vars.h"

namespace zdm::deploy {
namespace {

namespace fs = std::filesystem;
using http::Response;

const char* kJson = "application/json";
const char* kText = "text/plain; charset=utf-8";

// The Prometheus API calls the page makes (and nothing else is passed on).
bool prometheus_api(const std::string& path) {
  return path == "/api/v1/query" || path == "/api/v1/query_range" || path == "/api/v1/series" ||
         (path.rfind("/api/v1/label/", 0) == 0 && path.ends_with("/values") &&
          path.find("..") == std::string::npos);
}

http::Response json_error(unsigned status, const std::string& message) {
  return {status, kJson, Json{{"status", "error"}, {"error", message}}.dump()};
}

struct Monitoring {
  std::string prometheus;  // host:port
  double scrape_interval = 15;
};

// Where deploy_monitoring.yml puts Prometheus for this inventory.
Monitoring find_monitoring(const CommonOptions& opts) {
  Inventory inv = load_inventory(opts.inventory);
  Playbook pb = load_playbook((fs::path(opts.playbook_dir) / "deploy_monitoring.yml").string());
  Plan plan = make_plan(inv, pb, plan_options(opts));
  for (auto& pp : plan.plays) {
    if (pp.play->hosts != "monitoring") continue;
    if (pp.hosts.empty())
      throw std::runtime_error(fmt::format("{}: no host in [monitoring]", opts.inventory));
    Json scope = host_scope(pp, pp.hosts.front());
    Source src{"the monitoring play's vars for " + pp.hosts.front(), 1};
    Monitoring m;
    m.prometheus = to_text(evaluate("prometheus_web_listen_address", scope, src));
    m.scrape_interval = parse_duration(to_text(evaluate("prometheus_scrape_interval", scope, src)));
    return m;
  }
  throw std::runtime_error(fmt::format("{}: no play for hosts 'monitoring'", pb.path));
}

}  // namespace

double parse_duration(const std::string& text) {
  static const std::vector<std::pair<std::string, double>> units = {
      {"ms", 0.001}, {"s", 1},      {"m", 60},      {"h", 3600},
      {"d", 86400},  {"w", 604800}, {"y", 31536000}};
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    if (j == i) throw std::invalid_argument(fmt::format("bad duration '{}'", text));
    double n = std::stod(text.substr(i, j - i));
    bool found = false;
    for (auto& [u, f] : units) {
      if (text.compare(j, u.size(), u) == 0) {
        total += n * f;
        i = j + u.size();
        found = true;
        break;
      }
    }
    if (!found) throw std::invalid_argument(fmt::format("bad duration '{}'", text));
  }
  if (text.empty() || total <= 0)
    throw std::invalid_argument(fmt::format("bad duration '{}'", text));
  return total;
}

std::vector<DashboardFile> load_dashboards(const std::string& dir) {
  std::vector<DashboardFile> out;
  if (!fs::is_directory(dir)) throw std::runtime_error(fmt::format("{}: not a directory", dir));
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    Json j;
    try {
      j = Json::parse(ss.str());
    } catch (const Json::exception& ex) {
      throw std::runtime_error(fmt::format("{}: {}", e.path().string(), ex.what()));
    }
    if (!j.is_object() || !j.value("uid", Json()).is_string() ||
        !j.value("title", Json()).is_string() || !j.value("panels", Json()).is_array())
      throw std::runtime_error(
          fmt::format("{}: not a Grafana dashboard (uid, title, panels)", e.path().string()));
    out.push_back({j["uid"], j["title"], ss.str()});
  }
  if (out.empty()) throw std::runtime_error(fmt::format("{}: no dashboard (*.json)", dir));
  static const std::vector<std::string> first = {"zdm-proxy", "zdm-migration", "zdm-proxy-hosts"};
  auto rank = [&](const DashboardFile& d) {
    return std::find(first.begin(), first.end(), d.uid) - first.begin();
  };
  std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    return std::make_pair(rank(a), a.title) < std::make_pair(rank(b), b.title);
  });
  return out;
}

namespace {

// The page's answers. The dashboards are read again for every page load: an edited file shows
// on the next one.
class DashboardSite {
 public:
  DashboardSite(const DashboardOptions& options, const Monitoring& mon)
      : options_(options), mon_(mon), prometheus_("http://" + mon.prometheus) {}

  const std::string& prometheus() const { return prometheus_; }

  http::Response operator()(const http::Request& request) const {
    const std::string& method = request.method;
    const std::string& target = request.target;
    if (method != "GET") return {405, kText, "only GET\n"};
    std::string path = target.substr(0, target.find('?'));
    if (path == "/favicon.ico") return {204, kText, ""};
    if (path == "/api/config" || path.rfind("/api/dashboards/", 0) == 0) return dashboards(path);
    if (prometheus_api(path)) {
      HttpResult r = http_get(prometheus_ + target, 30);
      if (r.status < 0) return json_error(502, "Prometheus at " + prometheus_ + ": " + r.error);
      return {static_cast<unsigned>(r.status), kJson, std::move(r.body)};
    }
    for (const Asset& a : dashboard_assets())
      if (path == a.path)
        return {200, a.content_type, std::string(reinterpret_cast<const char*>(a.data), a.size)};
    return {404, kText, "404 page not found\n"};
  }

 private:
  // /api/config (Prometheus, the scrape interval, the dashboards) and /api/dashboards/<uid>.
  http::Response dashboards(const std::string& path) const {
    std::vector<DashboardFile> current;
    try {
      current = load_dashboards(options_.dashboards_dir);
    } catch (const std::exception& e) {
      return json_error(500, e.what());
    }
    if (path == "/api/config") {
      Json config = {{"prometheus", prometheus_},
                     {"scrape_interval_seconds", mon_.scrape_interval},
                     {"dashboards", Json::array()}};
      for (auto& d : current) config["dashboards"].push_back({{"uid", d.uid}, {"title", d.title}});
      return {200, kJson, config.dump()};
    }
    std::string uid = path.substr(16);
    for (auto& d : current)
      if (d.uid == uid) return {200, kJson, d.text};
    return json_error(404, "no dashboard with uid '" + uid + "'");
  }

  const DashboardOptions& options_;
  const Monitoring& mon_;
  const std::string prometheus_;
};

// --listen's port; nullopt when it is not ADDRESS:PORT.
std::optional<int> listen_port(const std::string& listen) {
  auto colon = listen.rfind(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no port");
    return std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void print_banner(const DashboardOptions& options, const std::vector<DashboardFile>& dashboards,
                  const std::string& prometheus, std::ostream& out) {
  HttpResult ready = http_get(prometheus + "/-/ready", 3);
  out << fmt::format("dashboard: http://{}/ ({} dashboards: ", options.listen, dashboards.size());
  for (size_t i = 0; i < dashboards.size(); ++i) out << (i ? ", " : "") << dashboards[i].title;
  out << fmt::format(
      ") from Prometheus {}{}\n", prometheus,
      ready.status == 200
          ? ""
          : " (NOT ready: " + (ready.status < 0 ? ready.error : std::to_string(ready.status)) +
                ")");
  out << "stop with Ctrl-C (SIGINT) or SIGTERM\n";
  out.flush();
}

// Serves until SIGINT or SIGTERM.
void serve_until_signal(boost::asio::io_context& ioc, http::Server& server) {
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    server.stop();
    ioc.stop();
  });
  // Prometheus calls block the thread that makes them: a few threads serve the page's parallel
  // panel queries (each connection's coroutine runs on one of them at a time).
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
}

}  // namespace

int dashboard(const CommonOptions& opts, const DashboardOptions& options, std::ostream& out,
              std::ostream& err) {
  Monitoring mon;
  std::vector<DashboardFile> dashboards;
  try {
    mon = find_monitoring(opts);
    dashboards = load_dashboards(options.dashboards_dir);
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }
  std::optional<int> port = listen_port(options.listen);
  if (!port) {
    err << "ERROR! --listen must be ADDRESS:PORT, not '" << options.listen << "'\n";
    return kExitBadOptions;
  }
  std::string address = options.listen.substr(0, options.listen.rfind(':'));
  DashboardSite site(options, mon);
  boost::asio::io_context ioc;
  std::unique_ptr<http::Server> server;
  try {
    server = std::make_unique<http::Server>(ioc, address, *port, std::cref(site));
  } catch (const std::exception& e) {
    err << "ERROR! cannot listen on " << options.listen << ": " << e.what() << '\n';
    return kExitError;
  }
  server->start();
  print_banner(options, dashboards, site.prometheus(), out);
  serve_until_signal(ioc, *server);
  out << "dashboard: stopped\n";
  return kExitOk;
}

}  // namespace zdm::deploy
