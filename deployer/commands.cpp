#include "commands.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "engine/diff.h"
#include "engine/executor.h"
#include "engine/interrupt.h"
#include "engine/plan.h"
#include "engine/playbook.h"
#include "inventory/inventory.h"
#include "inventory/zdm_vars.h"
#include "lookup.h"
#include "run.h"
#include "ssh/lock.h"
#include "ssh/transport.h"
#include "target_switch.h"
#include "template.h"
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

std::string chomp(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::vector<ProxyHost> proxy_hosts(const CommonOptions& opts, Inventory& inv, Redactor* secrets) {
  inv = load_inventory(opts.inventory);
  require_proxies(inv);
  Playbook pb = load_playbook((fs::path(opts.playbook_dir) / "deploy_proxy.yml").string());
  Plan plan = make_plan(inv, pb, plan_options(opts));
  for (auto& pp : plan.plays) {
    if (pp.play->hosts != "proxies") continue;
    std::vector<ProxyHost> out;
    for (auto& h : pp.hosts) out.push_back({h, host_scope(pp, h)});
    if (secrets) collect_secrets(plan, *secrets);
    return out;
  }
  throw PlaybookError(fmt::format("{}: no play for hosts 'proxies'", pb.path));
}

std::string host_var(const ProxyHost& t, const std::string& expr) {
  return to_text(evaluate(expr, t.scope, Source{"variables of " + t.host, 1}));
}

int run_playbook(const std::string& playbook, const CommonOptions& opts, std::ostream& out,
                 std::ostream& err) {
  Run run(playbook, opts);
  return run.execute(out, err);
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

namespace {

// The proxy's target switch and journal (GET /api/v1/target through zdmctl admin) in the row's
// "target"; it stays null when the proxy has none (404: an older binary, no admin token), and
// "target_error" says why for any other answer. Never fails the status.
void add_target_state(Json& row, Transport& tr, const std::string& home) {
  try {
    ExecResult r = tr.exec(target_admin_command(home, TargetAction::kStatus, ""), 30);
    if (r.rc != 0) {
      row["target_error"] = fmt::format("zdmctl admin exited {}", r.rc);
      return;
    }
    TargetHostResult t =
        classify_target_answer(row["host"].get<std::string>(), parse_admin_answer(r.out));
    if (t.state)
      row["target"] = target_state_json(*t.state);
    else if (t.outcome != "unavailable")
      row["target_error"] = "target switch: " + t.error;
  } catch (const std::exception& e) {  // a connection lost here loses only this column
    row["target_error"] = std::string("target switch: ") + e.what();
  }
}

// One proxy's row of `status`: what its zdmctl status --json says, or why there is none.
Json status_row(const ProxyHost& t, const CommonOptions& opts) {
  Json row = {{"host", t.host},
              {"address", nullptr},
              {"state", "unreachable"},
              {"running", false},
              {"pid", nullptr},
              {"version", ""},
              {"release", ""},
              {"running_release", ""},
              {"config_sha256", ""},
              {"readiness_status", 0},
              {"readiness", ""},
              {"uptime_seconds", nullptr},
              {"client_connections", nullptr},
              {"draining", false},
              {"last_audit", ""},
              {"target", nullptr}};
  try {
    row["address"] = host_var(t, "zdm_listen_address");
    std::string home = host_var(t, "zdm_home");
    auto tr = connect(connect_params(t.host, t.scope, opts.ssh));
    ExecResult r = tr->exec(shell_quote(home + "/bin/zdmctl") + " status --json", 30);
    if (r.rc == 0) {
      Json s = Json::parse(r.out);
      for (const char* k :
           {"running", "pid", "version", "release", "running_release", "config_sha256",
            "readiness_status", "readiness", "uptime_seconds", "client_connections", "draining",
            "last_audit", "previous_release", "service_manager", "supervisor_pid", "activation"})
        if (s.contains(k)) row[k] = s[k];
      row["state"] = s.value("running", false) ? "running" : "stopped";
      if (s.value("running", false)) add_target_state(row, *tr, home);
    } else {
      row["state"] = "not deployed";
      std::string e = chomp(r.err);
      row["error"] = r.rc == 127 ? fmt::format("no {}/bin/zdmctl: not deployed by zdm-deploy", home)
                                 : (e.empty() ? fmt::format("zdmctl exited {}", r.rc) : e);
    }
  } catch (const UnreachableError& e) {
    row["error"] = e.what();
  } catch (const std::exception& e) {
    row["state"] = "error";
    row["error"] = e.what();
  }
  return row;
}

// A value as a table cell: "-" for null or empty.
std::string cell_text(const Json& j) {
  if (j.is_null()) return std::string("-");
  std::string s = j.is_string() ? j.get<std::string>() : j.dump();
  return s.empty() ? std::string("-") : s;
}

std::string uptime_text(const Json& seconds) {
  if (!seconds.is_number()) return "-";
  long long u = seconds.get<long long>();
  return u >= 3600 ? fmt::format("{}h{:02}m", u / 3600, u / 60 % 60)
                   : fmt::format("{}m{:02}s", u / 60, u % 60);
}

// "<time> user=... command=\"...\" ... outcome=X" → "<time> user X"
std::string audit_summary(std::string audit) {
  if (audit == "-") return audit;
  auto kv = [&](const std::string& key) {
    auto p = audit.find(" " + key + "=");
    if (p == std::string::npos) return std::string();
    auto b = p + key.size() + 2;
    return audit.substr(b, audit.find(' ', b) - b);
  };
  return audit.substr(0, audit.find(' ')) + " " + kv("user") + " " + kv("outcome");
}

// A status row as the table's cells.
std::vector<std::string> status_cells(const Json& r) {
  std::string ready = r["readiness_status"] == 0 ? "-" : cell_text(r["readiness_status"]);
  if (!cell_text(r["readiness"]).empty() && cell_text(r["readiness"]) != "-")
    ready += " " + cell_text(r["readiness"]);
  std::string version = cell_text(r["version"]);
  if (auto p = version.find("zdm-proxy "); p == 0) version = version.substr(10);
  std::vector<std::string> target = target_status_cells(r.value("target", Json()));
  return {cell_text(r["host"]),
          cell_text(r["address"]),
          r["state"].get<std::string>() == "unreachable" ? "UNREACHABLE" : cell_text(r["state"]),
          cell_text(r["pid"]),
          version,
          cell_text(r["release"]),
          r["config_sha256"].is_string() && !r["config_sha256"].get<std::string>().empty()
              ? r["config_sha256"].get<std::string>().substr(0, 12)
              : "-",
          ready,
          uptime_text(r["uptime_seconds"]),
          cell_text(r["client_connections"]),
          target[0],
          target[1],
          target[2],
          audit_summary(cell_text(r["last_audit"]))};
}

// Rows of cells in columns as wide as their widest cell, two spaces apart.
void print_columns(const std::vector<std::vector<std::string>>& table, std::ostream& out) {
  std::vector<size_t> width(table[0].size(), 0);
  for (auto& row : table)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (auto& row : table) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c)
      line += c + 1 < row.size() ? fmt::format("{:<{}}  ", row[c], width[c]) : row[c];
    out << line << '\n';
  }
}

// The status table on `out`, then each host's error on `err`.
void print_status(const std::vector<Json>& rows, std::ostream& out, std::ostream& err) {
  std::vector<std::vector<std::string>> table = {{"HOST", "ADDRESS", "STATE", "PID", "VERSION",
                                                  "RELEASE", "CONFIG", "READY", "UPTIME", "CLIENTS",
                                                  "TARGET", "JOURNAL", "UNSETTLED", "LAST AUDIT"}};
  for (auto& r : rows) table.push_back(status_cells(r));
  print_columns(table, out);
  out.flush();
  for (auto& r : rows) {
    if (r.contains("error"))
      err << fmt::format("{}: {}\n", r["host"].get<std::string>(), r["error"].get<std::string>());
    if (r.contains("target_error"))
      err << fmt::format("{}: {}\n", r["host"].get<std::string>(),
                         r["target_error"].get<std::string>());
  }
}

}  // namespace

int status(const CommonOptions& opts, std::ostream& out, std::ostream& err) {
  Inventory inv;
  std::vector<ProxyHost> targets;
  try {
    targets = proxy_hosts(opts, inv);
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }
  std::vector<Json> rows(targets.size());
  parallel_for(targets.size(), std::max(opts.forks, 8), [&](size_t i) {
    rows[i] = status_row(targets[i], opts);  // each thread writes its own row only
  });
  bool healthy = !rows.empty(), unreachable = false;
  for (auto& r : rows) {
    healthy &= r["running"].get<bool>() && r["readiness_status"] == 200;
    unreachable |= r["state"] == "unreachable";
  }
  if (opts.json)
    out << Json(rows).dump(2) << '\n';
  else
    print_status(rows, out, err);
  if (unreachable) return kExitUnreachable;
  return healthy ? kExitOk : kExitHostFailed;
}

std::string since_cutoff(const std::string& since, long long now) {
  if (since.empty()) throw std::invalid_argument("--since: empty");
  char unit = since.back();
  std::string num = since.substr(0, since.size() - 1);
  long long t = -1;
  if (std::string("smhd").find(unit) != std::string::npos && !num.empty() &&
      std::all_of(num.begin(), num.end(), ::isdigit)) {
    long long n = std::stoll(num);
    long long mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
    t = now - n * mult;
  } else {
    std::tm tm{};
    const char* end = strptime(since.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) end = strptime(since.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
    if (!end) {
      tm = {};
      end = strptime(since.c_str(), "%Y-%m-%d", &tm);
    }
    if (!end)
      throw std::invalid_argument(fmt::format(
          "--since {}: expected 30s, 10m, 2h, 1d or a UTC time like 2026-01-31T10:00:00", since));
    t = timegm(&tm);
  }
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm out{};
  gmtime_r(&tt, &out);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &out);
  return buf;
}

int logs(const CommonOptions& opts, const LogOptions& log, std::ostream& out, std::ostream& err) {
  Inventory inv;
  std::vector<ProxyHost> targets;
  std::string cutoff;
  try {
    targets = proxy_hosts(opts, inv);
    if (!log.since.empty()) cutoff = since_cutoff(log.since, std::time(nullptr));
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
        std::string file = shell_quote(host_var(t, "zdm_home") + "/logs/zdm-proxy.log");
        auto tr = connect(connect_params(t.host, t.scope, opts.ssh));
        std::string cmd;
        if (cutoff.empty()) {
          cmd = fmt::format("tail -n {} {}{}", log.lines, log.follow ? "-F " : "", file);
        } else {
          // Lines from the cutoff on: the first ISO time of a line decides, lines without one
          // follow the line before. mawk has no {n}: the pattern is spelled out.
          std::string awk = fmt::format(
              "awk -v c={} '{{ if (match($0, /[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]"
              ":[0-9][0-9]:[0-9][0-9]/)) keep = (substr($0, RSTART, 19) >= c); if (keep) {{ print; "
              "fflush() }} }}'",
              cutoff);
          cmd = log.follow ? fmt::format("tail -n +1 -F {} | {}", file, awk)
                           : fmt::format("{} < {} | tail -n {}", awk, file, log.lines);
        }
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

namespace {

// Where the archive goes: --dest, else the inventory's archived_log_dir_name (a local folder).
std::string archive_dest(const std::string& dest_arg, const std::vector<ProxyHost>& targets) {
  if (!dest_arg.empty()) return dest_arg;
  std::string name = "zdm_proxy_archived_logs";
  try {
    name = host_var(targets.at(0), "archived_log_dir_name | default('zdm_proxy_archived_logs')");
  } catch (const std::exception&) {
    // archived_log_dir_name does not render: the default name stands (it names a local folder).
  }
  return name;
}

// The secrets to redact come from the deploy play's variables: without them no log is fetched
// (a log could carry a password unredacted). False, the error printed, when they are unknown.
bool load_log_secrets(const CommonOptions& opts, const Inventory& inv, Redactor& redactor,
                      std::ostream& err) {
  Plan plan;
  try {
    Playbook pb = load_playbook((fs::path(opts.playbook_dir) / "deploy_proxy.yml").string());
    plan = make_plan(inv, pb, plan_options(opts));
  } catch (const std::exception& e) {
    err << "ERROR! cannot tell which secrets to redact from the logs: " << e.what() << '\n';
    return false;
  }
  try {
    collect_secrets(plan, redactor);
  } catch (const SecretError& e) {
    err << "ERROR! " << e.what() << '\n';
    return false;
  }
  return true;
}

// One proxy's files and zdmctl outputs, redacted, into `dir`; throws when the host fails.
void collect_host_logs(const ProxyHost& t, const CommonOptions& opts, Redactor& redactor,
                       const fs::path& dir) {
  // What each host contributes: file on the host (relative to zdm_home) → name in the archive.
  static const std::vector<std::pair<std::string, std::string>> files = {
      {"logs/zdm-proxy.log", "zdm-proxy.log"},
      {"current/zdm-proxy.yml", "zdm-proxy.yml"},
      {"audit.log", "audit.log"},
      {"state/activation", "activation"},
      {"state/history", "history"},
      {"zdmctl.env", "zdmctl.env"}};
  std::string home = host_var(t, "zdm_home");
  auto tr = connect(connect_params(t.host, t.scope, opts.ssh));
  // The admin token is a secret of the host: kept out of the archive, never written here.
  ExecResult tok =
      tr->exec("cat " + shell_quote(home + "/secrets/proxy_admin_token") + " 2>/dev/null", 30);
  if (tok.rc == 0) redactor.add(chomp(tok.out));
  for (auto& [remote, local] : files) {
    ExecResult r = tr->exec("cat " + shell_quote(home + "/" + remote) + " 2>/dev/null", 120);
    if (r.rc != 0) continue;
    std::string text = redactor.apply(redact_secret_lines(r.out));
    std::ofstream(dir / local, std::ios::binary) << text;
  }
  for (auto& [cmd, local] : std::vector<std::pair<std::string, std::string>>{
           {"status", "status.txt"}, {"releases", "releases.txt"}}) {
    ExecResult r = tr->exec(shell_quote(home + "/bin/zdmctl") + " " + cmd, 60);
    std::ofstream(dir / local) << redactor.apply(r.out + r.err);
  }
}

// Packs work/base into dest/base.tar.gz and removes `work`; the archive's path, or "" (the
// error printed) when tar fails.
std::string pack_archive(const fs::path& work, const std::string& base, const std::string& dest,
                         std::ostream& err) {
  fs::create_directories(dest);
  fs::path archive = fs::absolute(fs::path(dest) / (base + ".tar.gz"));
  ConnectParams local;
  local.local = true;
  ExecResult tar =
      connect(local)->exec(fmt::format("tar -czf {} -C {} {}", shell_quote(archive.string()),
                                       shell_quote(work.string()), shell_quote(base)),
                           300);
  std::error_code ec;
  fs::remove_all(work, ec);
  if (tar.rc != 0) {
    err << "ERROR! tar: " << tar.err << '\n';
    return "";
  }
  return archive.string();
}

}  // namespace

int collect_logs(const CommonOptions& opts, const std::string& dest_arg, std::ostream& out,
                 std::ostream& err) {
  Inventory inv;
  std::vector<ProxyHost> targets;
  try {
    targets = proxy_hosts(opts, inv);
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }
  std::string dest = archive_dest(dest_arg, targets);
  std::string base = "zdm_proxy_logs_" + release_id_now();
  fs::path work = fs::temp_directory_path() / (base + "-" + std::to_string(getpid()));
  auto redactor = std::make_shared<Redactor>();
  if (!load_log_secrets(opts, inv, *redactor, err)) return kExitUnreachable;
  fs::create_directories(work / base);
  std::mutex mu;
  std::atomic<bool> any_failed{false};
  parallel_for(targets.size(), opts.forks, [&](size_t i) {
    const ProxyHost& t = targets[i];
    fs::path dir = work / base / t.host;
    fs::create_directories(dir);
    try {
      collect_host_logs(t, opts, *redactor, dir);
      std::lock_guard lock(mu);
      out << fmt::format("collected: [{}]\n", t.host);
    } catch (const std::exception& e) {
      any_failed = true;
      std::ofstream(dir / "ERROR.txt") << e.what() << '\n';
      std::lock_guard lock(mu);
      err << fmt::format("[{}] error: {}\n", t.host, e.what());
    }
  });
  std::string archive = pack_archive(work, base, dest, err);
  if (archive.empty()) return kExitError;
  out << archive << '\n';
  return any_failed ? kExitHostFailed : kExitOk;
}

int lock_command(const CommonOptions& opts, const std::string& action, const std::string& message,
                 std::ostream& out, std::ostream& err) {
  Inventory inv;
  try {
    inv = load_inventory(opts.inventory);
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }
  // Every host of the inventory, with the variables its plays give it.
  std::vector<std::string> hosts;
  std::map<std::string, Json> scopes;
  for (const char* pbname : {"deploy_proxy.yml", "deploy_monitoring.yml"}) {
    try {
      Playbook pb = load_playbook((fs::path(opts.playbook_dir) / pbname).string());
      Plan plan = make_plan(inv, pb, plan_options(opts));
      for (auto& pp : plan.plays)
        for (auto& h : pp.hosts)
          if (!scopes.count(h)) hosts.push_back(h), scopes[h] = host_scope(pp, h);
    } catch (const std::exception& e) {
      err << "ERROR! " << e.what() << '\n';
      return kExitUnreachable;
    }
  }
  std::string state_dir = opts.state_dir.empty() ? default_state_dir() : opts.state_dir;
  std::string local = local_lock_path(state_dir, opts.inventory);
  LockHolder me = current_holder(opts.command_line, "manual-" + release_id_now(), message);
  me.pid = 0;  // a manual lock outlives this process
  std::vector<std::string> lines(hosts.size());
  std::atomic<bool> problem{false};
  if (action == "acquire") {
    if (auto h = acquire_local_lock(local, me)) {
      err << fmt::format("ERROR! locked on this machine by {}\n", h->describe());
      return kExitError;
    }
  }
  parallel_for(hosts.size(), opts.forks, [&](size_t i) {
    const std::string& h = hosts[i];
    std::string dir = host_lock_dir(h, scopes[h], inv);
    try {
      auto tr = connect(connect_params(h, scopes[h], opts.ssh));
      std::string script = action == "acquire"   ? host_lock_acquire_script(dir, me)
                           : action == "release" ? host_lock_release_script(dir, "", true)
                                                 : host_lock_status_script(dir);
      ExecResult r = tr->exec(script, 30);
      HostLockResult lr = parse_host_lock_output(r.out);
      if (action == "acquire")
        lines[i] = lr.acquired ? fmt::format("{}: locked", h)
                               : fmt::format("{}: already locked by {}", h,
                                             lr.holder ? lr.holder->describe() : r.out);
      else if (action == "release")
        lines[i] = fmt::format("{}: released", h);
      else
        lines[i] = lr.holder ? fmt::format("{}: locked by {}", h, lr.holder->describe())
                             : fmt::format("{}: not locked", h);
      if (action == "acquire" && !lr.acquired) problem = true;
    } catch (const std::exception& e) {
      lines[i] = fmt::format("{}: {}", h, e.what());
      problem = true;
    }
  });
  if (action == "release") release_local_lock(local, me, true);
  if (action == "status") {
    auto h = read_local_lock(local);
    out << fmt::format("this machine: {}\n", h ? "locked by " + h->describe() : "not locked");
  } else if (action == "acquire") {
    out << "this machine: locked\n";
  } else {
    out << "this machine: released\n";
  }
  for (auto& l : lines) out << l << '\n';
  return problem ? kExitError : kExitOk;
}

}  // namespace zdm::deploy
