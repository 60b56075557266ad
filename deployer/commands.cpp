#include "commands.h"

#include <filesystem>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "executor.h"
#include "http.h"
#include "inventory.h"
#include "plan.h"
#include "playbook.h"
#include "template.h"
#include "transport.h"
#include "vars.h"

#ifndef ZDM_PROXY_BINARY
#define ZDM_PROXY_BINARY "zdm-proxy"
#endif
#ifndef ZDM_DATA_BINARY
#define ZDM_DATA_BINARY "zdm-data"
#endif

namespace zdm::deploy {
namespace {

namespace fs = std::filesystem;

struct ProxyTarget {
  std::string host;
  Json scope;
};

// The proxies with the variables deploy_proxy.yml would give them.
std::vector<ProxyTarget> proxy_targets(const CommonOptions& opts) {
  Inventory inv = load_inventory(opts.inventory);
  Playbook pb = load_playbook((fs::path(opts.playbook_dir) / "deploy_proxy.yml").string());
  PlanOptions po = plan_options(opts);
  Plan plan = make_plan(inv, pb, po);
  std::vector<ProxyTarget> out;
  for (auto& pp : plan.plays) {
    if (pp.play->hosts != "proxies") continue;
    for (auto& h : pp.hosts) out.push_back({h, host_scope(pp, h)});
    return out;
  }
  throw PlaybookError(fmt::format("{}: no play for hosts 'proxies'", pb.path));
}

std::string var(const ProxyTarget& t, const std::string& expr) {
  return to_text(evaluate(expr, t.scope, Source{"status of " + t.host, 1}));
}

}  // namespace

PlanOptions plan_options(const CommonOptions& opts) {
  PlanOptions po;
  for (auto& e : opts.extra_vars) overlay(po.extra_vars, parse_extra_vars(e));
  po.limit = opts.limit;
  po.release_id = release_id_now();
  po.defaults = {{"zdm_proxy_binary", ZDM_PROXY_BINARY}, {"zdm_data_binary", ZDM_DATA_BINARY}};
  return po;
}

int run_playbook(const std::string& playbook, const CommonOptions& opts, std::ostream& out,
                 std::ostream& err) {
  Inventory inv;
  Playbook pb;
  Plan plan;
  try {
    inv = load_inventory(opts.inventory);
    pb = load_playbook(playbook);
    plan = make_plan(inv, pb, plan_options(opts));
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;  // Ansible: parse errors exit 4
  }
  ExecOptions eo;
  eo.forks = opts.forks;
  eo.known_hosts = opts.known_hosts;
  eo.verbosity = opts.verbosity;
  Executor ex(pb, plan, eo, out);
  return ex.run();
}

std::map<std::string, std::string> parse_key_values(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

int status(const CommonOptions& opts, bool json, std::ostream& out, std::ostream& err) {
  std::vector<ProxyTarget> targets;
  try {
    targets = proxy_targets(opts);
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }
  std::vector<Json> rows(targets.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < targets.size(); ++i) {
    threads.emplace_back([&, i] {
      const ProxyTarget& t = targets[i];
      Json row = {{"host", t.host},      {"address", nullptr},    {"running", false},
                  {"pid", nullptr},      {"version", ""},         {"release", ""},
                  {"config_sha256", ""}, {"readiness_status", 0}, {"readiness", nullptr}};
      std::vector<std::string> errors;
      try {
        std::string address = var(t, "ansible_host");
        row["address"] = address;
        std::string home = var(t, "zdm_proxy_home_dir");
        std::string port = var(t, "metrics_port | default(14001)");
        std::thread http([&] {
          HttpResult h = http_get(fmt::format("http://{}:{}/health/readiness", address, port), 3);
          row["readiness_status"] = h.status < 0 ? 0 : h.status;
          if (h.status > 0) {
            try {
              row["readiness"] = Json::parse(h.body);
            } catch (const Json::exception&) {
              row["readiness"] = nullptr;
            }
          }
        });
        try {
          auto tr = connect(connect_params(t.host, t.scope, opts.known_hosts, 10));
          ExecResult r = tr->exec(shell_quote(home + "/current/zdmctl") + " status");
          auto kv = parse_key_values(r.out);
          row["running"] = kv["running"] == "yes";
          if (!kv["pid"].empty()) {
            try {
              row["pid"] = std::stoll(kv["pid"]);
            } catch (const std::exception&) {
            }
          }
          row["version"] = kv["version"];
          row["release"] = kv["release"];
          row["config_sha256"] = kv["config_sha256"];
          if (kv.empty()) {
            std::string e = r.err;
            while (!e.empty() && e.back() == '\n') e.pop_back();
            errors.push_back(e.empty() ? fmt::format("zdmctl status exited {}", r.rc) : e);
          }
        } catch (const std::exception& e) {
          errors.push_back(e.what());
        }
        http.join();
      } catch (const std::exception& e) {
        errors.push_back(e.what());
      }
      if (!errors.empty()) {
        std::string all;
        for (auto& e : errors) all += (all.empty() ? "" : "; ") + e;
        row["error"] = all;
      }
      rows[i] = row;
    });
  }
  for (auto& th : threads) th.join();
  bool healthy = !rows.empty();
  for (auto& r : rows) healthy &= r["running"].get<bool>() && r["readiness_status"] == 200;
  if (json) {
    out << Json(rows).dump(2) << '\n';
  } else {
    std::vector<std::vector<std::string>> table = {
        {"HOST", "ADDRESS", "RUNNING", "PID", "VERSION", "RELEASE", "CONFIG_SHA256", "READINESS"}};
    for (auto& r : rows) {
      std::string ready =
          r["readiness_status"] == 0 ? "-" : std::to_string(r["readiness_status"].get<int>());
      if (r["readiness"].is_object() && r["readiness"].contains("Status"))
        ready += " " + to_text(r["readiness"]["Status"]);
      table.push_back(
          {r["host"].get<std::string>(), to_text(r["address"]),
           r["running"].get<bool>() ? "yes" : "no", r["pid"].is_null() ? "-" : r["pid"].dump(),
           r["version"].get<std::string>().empty() ? "-" : r["version"].get<std::string>(),
           r["release"].get<std::string>().empty() ? "-" : r["release"].get<std::string>(),
           r["config_sha256"].get<std::string>().empty()
               ? "-"
               : r["config_sha256"].get<std::string>().substr(0, 12),
           ready});
    }
    std::vector<size_t> width(table[0].size(), 0);
    for (auto& row : table)
      for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    for (auto& row : table) {
      std::string text;
      for (size_t c = 0; c < row.size(); ++c)
        text += c + 1 < row.size() ? fmt::format("{:<{}}  ", row[c], width[c]) : row[c];
      out << text << '\n';
    }
    out.flush();
    for (auto& r : rows)
      if (r.contains("error"))
        err << fmt::format("{}: {}\n", r["host"].get<std::string>(), r["error"].get<std::string>());
  }
  return healthy ? kExitOk : kExitHostFailed;
}

int logs(const CommonOptions& opts, int lines, bool follow, std::ostream& out, std::ostream& err) {
  std::vector<ProxyTarget> targets;
  try {
    targets = proxy_targets(opts);
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }
  std::mutex mu;
  std::atomic<bool> any_failed{false};
  std::vector<std::thread> threads;
  for (auto& t : targets) {
    threads.emplace_back([&, t] {
      try {
        std::string home = var(t, "zdm_proxy_home_dir");
        auto tr = connect(connect_params(t.host, t.scope, opts.known_hosts, 10));
        std::string cmd = fmt::format("tail -n {} {}{}", lines, follow ? "-F " : "",
                                      shell_quote(home + "/logs/zdm-proxy.log"));
        int rc = tr->stream(cmd, [&](std::string_view line) {
          std::lock_guard lock(mu);
          out << '[' << t.host << "] " << line << '\n';
          out.flush();
        });
        if (rc != 0) {
          any_failed = true;
          std::lock_guard lock(mu);
          err << fmt::format("[{}] tail exited {}\n", t.host, rc);
        }
      } catch (const std::exception& e) {
        any_failed = true;
        std::lock_guard lock(mu);
        err << fmt::format("[{}] error: {}\n", t.host, e.what());
      }
    });
  }
  for (auto& th : threads) th.join();
  return any_failed ? kExitHostFailed : kExitOk;
}

}  // namespace zdm::deploy
