#include "run.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <thread>

#include <fmt/format.h>

#include "engine/interrupt.h"
#include "inventory/zdm_vars.h"
#include "preflight.h"
#include "template.h"

#include "common/util/clock.h"

namespace zdm::deploy {
namespace {

namespace fs = std::filesystem;

using util::utc_now;

std::string chomp(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

bool targets_proxies(const Playbook& pb) {
  for (auto& p : pb.plays)
    if (p.hosts == "proxies" || p.hosts.find("proxies") != std::string::npos) return true;
  return false;
}

}  // namespace

void parallel_for(size_t n, int forks, const std::function<void(size_t)>& f) {
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < n;) f(i);
  };
  size_t k = std::min<size_t>(std::max(1, forks), n);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < k; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
}

void require_proxies(const Inventory& inv) {
  if (inv.has_group("proxies") && !inv.group_hosts("proxies").empty()) return;
  std::string groups, suggestion;
  for (auto& g : inv.group_order) {
    if (g == "all" || g == "ungrouped") continue;
    groups += (groups.empty() ? "" : ", ") + g;
    if (edit_distance(g, "proxies") <= 3 && suggestion.empty()) suggestion = g;
  }
  throw InventoryError(fmt::format(
      "{}: {} [proxies] group: zdm-deploy deploys zdm-proxy to the hosts of [proxies]{}{}",
      inv.path, inv.has_group("proxies") ? "an empty" : "no",
      groups.empty() ? "" : " (groups: " + groups + ")",
      suggestion.empty() ? "" : fmt::format("; did you mean [{}]?", suggestion)));
}

std::string host_lock_dir(const std::string& host, const Json& scope, const Inventory& inv) {
  auto groups = inv.host_groups(host);
  bool proxy = std::find(groups.begin(), groups.end(), "proxies") != groups.end();
  const char* expr = proxy ? "zdm_proxy_home_dir | default(zdm_proxy_default_home_dir)"
                           : "monitoring_home_dir | default(monitoring_default_home_dir)";
  try {
    std::string d = to_text(evaluate(expr, scope, Source{"lock of " + host, 1}));
    if (!d.empty()) return d;
  } catch (const std::exception&) {
    // The home directory variable does not render: the lock uses the fallback below.
  }
  return kFallbackHostDir;
}

Run::Run(std::string playbook, CommonOptions opts, std::shared_ptr<Connector> connector)
    : playbook_(std::move(playbook)),
      opts_(std::move(opts)),
      connections_(std::make_shared<HostConnections>(std::move(connector))) {}

Run::~Run() = default;

bool Run::load(std::ostream& err) {
  try {
    inv_ = load_inventory(opts_.inventory);
    pb_ = load_playbook(playbook_);
    if (targets_proxies(pb_)) require_proxies(inv_);
    po_ = plan_options(opts_);
    plan_ = make_plan(inv_, pb_, po_);
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return false;
  }
  return true;
}

void Run::list_hosts(std::ostream& out) const {
  out << "\nplaybook: " << playbook_ << "\n";
  int n = 0;
  for (auto& pp : plan_.plays) {
    out << fmt::format("\n  play #{} ({}): {}\n    pattern: ['{}']\n    hosts ({}):\n", ++n,
                       pp.play->hosts, pp.play->name, pp.play->hosts, pp.hosts.size());
    for (auto& h : pp.hosts) out << "      " << h << '\n';
  }
}

ConnectParams Run::params(const std::string& host) const {
  return connect_params(host, scopes_.at(host), opts_.ssh);
}

ExecResult Run::exec_on(const std::string& host, const std::string& command, int timeout_seconds) {
  ConnectParams p = params(host);
  Transport& tr = connections_->get(host, p);
  try {
    return tr.exec(command, timeout_seconds);
  } catch (const UnreachableError&) {
    connections_->drop(host);
  }
  return connections_->get(host, p).exec(command, timeout_seconds);
}

void Run::release_locks(std::ostream& err) {
  parallel_for(locks_taken_.size(), opts_.forks, [&](size_t i) {
    auto& [h, dir] = locks_taken_[i];
    try {
      exec_on(h, host_lock_release_script(dir, me_.run_id, false), 30);
    } catch (const std::exception& e) {
      std::lock_guard lock(mu_);
      err << fmt::format("[WARNING]: {}: lock not released: {}\n", h, e.what());
    }
  });
  release_local_lock(local_lock_, me_, false);
}

bool Run::take_locks(std::ostream& err) {
  if (auto holder = acquire_local_lock(local_lock_, me_)) {
    err << fmt::format(
        "ERROR! {} is locked on this machine by {}: wait for that run to end (or, if it is "
        "gone, `zdm-deploy lock release -i {}`)\n",
        opts_.inventory, holder->describe(), opts_.inventory);
    return false;
  }
  std::vector<std::string> refused;
  parallel_for(hosts_.size(), opts_.forks, [&](size_t i) {
    const std::string& h = hosts_[i];
    std::string dir = host_lock_dir(h, scopes_[h], inv_);
    std::string problem;
    try {
      Transport& tr = connections_->get(h, params(h));
      for (int attempt = 0; attempt < 2; ++attempt) {
        ExecResult r = tr.exec(host_lock_acquire_script(dir, me_), 30);
        HostLockResult lr = parse_host_lock_output(r.out);
        if (lr.acquired) {
          std::lock_guard lock(mu_);
          locks_taken_.emplace_back(h, dir);
          return;
        }
        if (lr.holder && lr.holder->dead_here() && attempt == 0) {  // its run died: take over
          tr.exec(host_lock_release_script(dir, "", true), 30);
          continue;
        }
        problem = lr.holder ? fmt::format("{}: locked by {}", h, lr.holder->describe())
                            : fmt::format("{}: cannot take the lock: {}", h,
                                          chomp(r.err.empty() ? r.out : r.err));
        break;
      }
    } catch (const UnreachableError&) {
      connections_->drop(h);
      return;  // the run reports the host unreachable
    } catch (const std::exception& e) {
      problem = fmt::format("{}: {}", h, e.what());
    }
    std::lock_guard lock(mu_);
    refused.push_back(problem);
  });
  if (refused.empty()) return true;
  std::sort(refused.begin(), refused.end());
  err << "ERROR! another run holds the lock, nothing was changed:\n";
  for (auto& r : refused) err << "  " << r << '\n';
  err << "  wait for it to end, or if it is gone: zdm-deploy lock release -i " << opts_.inventory
      << '\n';
  release_locks(err);
  return false;
}

void Run::write_audit(const Executor& ex, std::ostream& out) {
  std::vector<std::string> local_lines;
  auto outcomes = ex.outcomes();
  std::string user = local_account().user;
  char machine[256] = {};
  gethostname(machine, sizeof machine - 1);
  std::vector<std::pair<std::string, std::string>> lines;  // host, line
  for (auto& [h, o] : outcomes) {
    Json facts = ex.facts(h);
    std::string line = fmt::format(
        "{} user={} machine={} run={} command={} host={} release={} config_sha256={} "
        "outcome={}",
        utc_now(), user, machine, po_.run_id, Json(shown_command_).dump(), h,
        facts.value("zdm_audit_release", Json("")).is_string()
            ? facts.value("zdm_audit_release", std::string())
            : std::string(),
        facts.value("zdm_audit_config_sha256", Json("")).is_string()
            ? facts.value("zdm_audit_config_sha256", std::string())
            : std::string(),
        o.status);
    if (!opts_.audit_note.empty()) line += " " + opts_.audit_note;
    line = eo_.redactor->apply(line);
    lines.emplace_back(h, line);
    local_lines.push_back(line);
  }
  parallel_for(lines.size(), opts_.forks, [&](size_t i) {
    auto& [h, line] = lines[i];
    if (outcomes[i].second.status == "unreachable") return;
    try {
      std::string dir = host_lock_dir(h, scopes_[h], inv_);
      exec_on(h,
              fmt::format("mkdir -p {0} && printf '%s\\n' {1} >> {0}/audit.log",
                          quote_host_path(dir), shell_quote(line)),
              30);
    } catch (const std::exception&) {
      // Best effort: the audit line is also written locally, and a host lost at the end of a
      // run was reported as unreachable already.
    }
  });
  std::error_code ec;
  fs::create_directories(state_dir_, ec);
  std::ofstream audit(fs::path(state_dir_) / "audit.log", std::ios::app);
  for (auto& l : local_lines) audit << l << '\n';
  // A retry file names the hosts that failed (--limit @FILE).
  std::vector<std::string> failed;
  for (auto& [h, o] : outcomes)
    if (o.status == "failed" || o.status == "unreachable" || o.status == "interrupted")
      failed.push_back(h);
  if (!failed.empty()) {
    std::string retry =
        (fs::path(state_dir_) / (fs::path(playbook_).stem().string() + ".retry")).string();
    std::ofstream r(retry);
    for (auto& h : failed) r << h << '\n';
    out << fmt::format("\nto retry the hosts that did not finish: --limit @{}\n", retry);
  }
}

Json Run::summary(const Executor& ex, int rc) const {
  Json j = {{"exit_code", rc}, {"hosts", Json::array()}};
  for (auto& [h, o] : ex.outcomes()) {
    const HostStats& s = ex.stats().at(h);
    Json facts = ex.facts(h);
    j["hosts"].push_back({{"host", h},
                          {"outcome", o.status},
                          {"message", eo_.redactor->apply(o.message)},
                          {"ok", s.ok},
                          {"changed", s.changed},
                          {"failed", s.failed},
                          {"unreachable", s.unreachable},
                          {"release", facts.value("zdm_audit_release", Json(""))}});
  }
  return j;
}

int Run::execute(std::ostream& out, std::ostream& err) {
  if (!load(err)) return kExitUnreachable;  // Ansible: parse errors exit 4
  std::vector<std::string> report = variable_report(plan_, pb_, po_.extra_vars);
  if (opts_.list_hosts) {
    for (auto& w : report) out << "[WARNING]: " << w << '\n';
    list_hosts(out);
    return kExitOk;
  }
  eo_.forks = opts_.forks;
  eo_.ssh = opts_.ssh;
  eo_.verbosity = opts_.verbosity;
  eo_.check = opts_.check;
  eo_.diff = opts_.diff;
  eo_.task_timeout_seconds = opts_.task_timeout_seconds;
  eo_.connections = connections_;
  try {
    collect_secrets(plan_, *eo_.redactor);
  } catch (const SecretError& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }
  shown_command_ = eo_.redactor->apply(opts_.command_line);
  for (auto& w : report) out << "[WARNING]: " << w << '\n';
  for (auto& pp : plan_.plays)
    for (auto& h : pp.hosts)
      if (!scopes_.count(h)) hosts_.push_back(h), scopes_[h] = host_scope(pp, h);
  me_ = current_holder(shown_command_, po_.run_id);
  state_dir_ = opts_.state_dir.empty() ? default_state_dir() : opts_.state_dir;
  local_lock_ = local_lock_path(state_dir_, opts_.inventory);
  if (!opts_.check && !take_locks(err)) return kExitError;

  TextReporter::Options shown{opts_.verbosity, opts_.diff, opts_.check, eo_.redactor};
  std::unique_ptr<Reporter> reporter = opts_.json ? std::make_unique<JsonReporter>(out, shown)
                                                  : std::make_unique<TextReporter>(out, shown);
  install_interrupt_handler();
  reset_interrupts();
  Executor ex(pb_, plan_, eo_, *reporter);
  int rc = ex.run();
  if (!opts_.check) {
    write_audit(ex, out);
    release_locks(err);
  }
  reporter->summary(summary(ex, rc));
  return rc;
}

}  // namespace zdm::deploy
