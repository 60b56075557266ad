#include "replay.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include <fmt/format.h>

#include "commands.h"
#include "digest.h"
#include "engine/executor.h"
#include "preflight.h"
#include "run.h"
#include "ssh/lock.h"

#include "common/util/clock.h"
#include "common/util/strings.h"

namespace zdm::deploy {
namespace {

namespace fs = std::filesystem;

using util::trim;
using util::upper;

// The last `n` non-empty lines of `text`, joined with " / ".
std::string last_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l))
    if (!trim(l).empty()) lines.push_back(trim(l));
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += (out.empty() ? "" : " / ") + lines[i];
  return out.size() > 600 ? out.substr(out.size() - 600) : out;
}

long long number_or_zero(const std::map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end()) return 0;
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    return 0;
  }
}

std::string read_local_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string plural(long long n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

}  // namespace

std::string replay_credentials_text(const std::optional<std::string>& target_password,
                                    const std::optional<std::string>& origin_password) {
  std::string text;
  if (target_password) text += "ZDM_DATA_TARGET_PASSWORD=" + shell_quote(*target_password) + "\n";
  if (origin_password) text += "ZDM_DATA_ORIGIN_PASSWORD=" + shell_quote(*origin_password) + "\n";
  return text;
}

std::string replay_command(const ReplayInvocation& r) {
  std::string cmd;
  if (!r.credentials.empty())
    cmd = fmt::format("set -a && . {0} && set +a && rm -f {0} && ", shell_quote(r.credentials));
  cmd += fmt::format("exec {} replay --journal {} --target {} --target-port {}",
                     shell_quote(r.zdm_data), shell_quote(r.journal_dir),
                     shell_quote(r.contact_points), shell_quote(r.port));
  if (!r.username.empty()) cmd += " --target-username " + shell_quote(r.username);
  if (!r.tls_ca.empty()) cmd += " --target-tls-ca " + shell_quote(r.tls_ca);
  if (!r.tls_cert.empty()) cmd += " --target-tls-cert " + shell_quote(r.tls_cert);
  if (!r.tls_key.empty()) cmd += " --target-tls-key " + shell_quote(r.tls_key);
  if (r.rate) cmd += fmt::format(" --rate {}", *r.rate);
  if (r.validate) {
    cmd += fmt::format(" --validate --origin {} --origin-port {}",
                       shell_quote(r.origin_contact_points), shell_quote(r.origin_port));
    if (!r.origin_username.empty()) cmd += " --origin-username " + shell_quote(r.origin_username);
    if (!r.origin_tls_ca.empty()) cmd += " --origin-tls-ca " + shell_quote(r.origin_tls_ca);
    if (!r.origin_tls_cert.empty()) cmd += " --origin-tls-cert " + shell_quote(r.origin_tls_cert);
    if (!r.origin_tls_key.empty()) cmd += " --origin-tls-key " + shell_quote(r.origin_tls_key);
  }
  cmd += " --progress none";
  return cmd;
}

std::string journal_status_command(const std::string& zdm_data, const std::string& journal_dir) {
  return fmt::format("{} journal-status --journal {} --json", shell_quote(zdm_data),
                     shell_quote(journal_dir));
}

std::map<std::string, std::string> parse_replay_summary(const std::string& out) {
  std::map<std::string, std::string> m;
  std::istringstream in(out);
  std::string line, last;
  while (std::getline(in, line))
    if (line.rfind("replay: ", 0) == 0) last = line;
  if (last.empty()) return m;
  std::istringstream words(last.substr(8));
  std::string w;
  while (words >> w) {
    auto eq = w.find('=');
    if (eq != std::string::npos) m[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return m;
}

std::optional<ReplayCheck> parse_replay_check(const std::map<std::string, std::string>& summary,
                                              const std::string& out) {
  if (!summary.count("checked")) return std::nullopt;
  ReplayCheck c;
  c.checked = number_or_zero(summary, "checked");
  c.equal = number_or_zero(summary, "equal");
  c.differing = number_or_zero(summary, "differing");
  c.unverifiable = number_or_zero(summary, "unverifiable");
  c.check_errors = number_or_zero(summary, "check_errors");
  c.kept_unconfirmed = number_or_zero(summary, "kept_unconfirmed");
  // "differing partition: KS.TABLE KEY: WHAT" (zdm-data's check report).
  static const std::string kDiffering = "differing partition: ";
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(kDiffering, 0) != 0) continue;
    std::string table = line.substr(kDiffering.size());
    table = table.substr(0, table.find_first_of(" :"));
    if (!table.empty() && std::find(c.differing_tables.begin(), c.differing_tables.end(), table) ==
                              c.differing_tables.end())
      c.differing_tables.push_back(table);
  }
  std::sort(c.differing_tables.begin(), c.differing_tables.end());
  return c;
}

std::string replay_check_text(const ReplayCheck& c) {
  return fmt::format("checked {}: {} equal, {} differing, {} unverifiable, {}, {} kept",
                     plural(c.checked, "partition", "partitions"), c.equal, c.differing,
                     c.unverifiable, plural(c.check_errors, "check error", "check errors"),
                     plural(c.kept_unconfirmed, "segment", "segments"));
}

JournalLeft parse_journal_status(const std::string& text) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception&) {
    throw std::invalid_argument("journal-status: not JSON: '" + last_lines(text, 2) + "'");
  }
  if (!j.is_object()) throw std::invalid_argument("journal-status: expected a JSON object");
  auto num = [&](const char* key) -> long long {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer())
      throw std::invalid_argument(fmt::format("journal-status: no integer '{}'", key));
    return it->get<long long>();
  };
  JournalLeft l;
  l.segments = num("segments");
  l.bytes = num("bytes");
  l.pending = num("pending");
  auto t = j.find("torn");
  l.torn = t != j.end() && t->is_array() ? static_cast<long long>(t->size()) : 0;
  return l;
}

std::string replay_outcome(int exit_status, const std::optional<ReplayCheck>& check) {
  if (exit_status == 1 && check) {
    if (check->differing > 0) return "differing";
    if (check->kept_unconfirmed > 0) return "unconfirmed";
  }
  return exit_status == 0 ? "ok" : exit_status == 4 ? "torn" : "failed";
}

std::string replay_result_line(const ReplayHostResult& r) {
  if (r.outcome == "skipped") return fmt::format("{}: skipped: {}", r.host, r.error);
  if (r.outcome == "unreachable") return fmt::format("{}: unreachable: {}", r.host, r.error);
  std::string line = fmt::format("{}: replay {}", r.host, r.outcome);
  if (r.exit_status >= 0)
    line += fmt::format(" (exit {}): {} applied, {}", r.exit_status,
                        plural(r.applied, "write", "writes"),
                        plural(r.torn, "torn tail", "torn tails"));
  if (r.check) line += "; " + replay_check_text(*r.check);
  if (r.left)
    line +=
        fmt::format("; left: {} to replay, {}, {}", plural(r.left->pending, "write", "writes"),
                    plural(r.left->segments, "segment", "segments"), byte_size_text(r.left->bytes));
  if (!r.error.empty()) line += (r.exit_status >= 0 || r.left ? "; " : ": ") + r.error;
  return line;
}

int replay_exit_code(const std::vector<ReplayHostResult>& results) {
  bool unreachable = false, failed = false;
  for (auto& r : results) {  // "differing" and "unconfirmed" fail too: segments were kept
    unreachable |= r.outcome == "unreachable";
    failed |= r.outcome != "ok" && r.outcome != "skipped";
  }
  return unreachable ? kExitUnreachable : failed ? kExitHostFailed : kExitOk;
}

Json replay_summary_json(const std::vector<ReplayHostResult>& results, int rc) {
  Json hosts = Json::array();
  for (auto& r : results) {
    Json left = nullptr;
    if (r.left)
      left = {{"segments", r.left->segments},
              {"bytes", r.left->bytes},
              {"pending", r.left->pending},
              {"torn", r.left->torn}};
    Json check = nullptr;
    if (r.check)
      check = {{"checked", r.check->checked},
               {"equal", r.check->equal},
               {"differing", r.check->differing},
               {"unverifiable", r.check->unverifiable},
               {"check_errors", r.check->check_errors},
               {"kept_unconfirmed", r.check->kept_unconfirmed},
               {"differing_tables", r.check->differing_tables}};
    hosts.push_back({{"host", r.host},
                     {"outcome", r.outcome},
                     {"exit_status", r.exit_status},
                     {"applied", r.applied},
                     {"torn", r.torn},
                     {"error", r.error},
                     {"left", left},
                     {"check", check}});
  }
  return {{"exit_code", rc}, {"hosts", hosts}};
}

int replay_command_run(const CommonOptions& opts, const ReplayOptions& ro, std::ostream& out,
                       std::ostream& err, std::shared_ptr<Connector> connector) {
  if (!connector) connector = default_connector();
  Inventory inv;
  std::vector<ProxyHost> proxies;
  Redactor redactor;
  try {
    proxies = proxy_hosts(opts, inv, &redactor);
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }

  // Everything each host needs, rendered before any host is contacted: a template error stops
  // the command before anything runs.
  struct HostPlan {
    ReplayInvocation inv;
    std::string home, audit_dir, data_dir, password, origin_password, binary;
    std::vector<std::pair<std::string, std::string>> tls;  // local file → host path
  };
  std::vector<HostPlan> plans(proxies.size());
  try {
    for (size_t i = 0; i < proxies.size(); ++i) {
      const ProxyHost& p = proxies[i];
      HostPlan& h = plans[i];
      h.home = host_var(p, "zdm_home");
      h.audit_dir = host_lock_dir(p.host, p.scope, inv);
      h.data_dir = h.home + "/zdm-data";
      h.binary = host_var(p, "zdm_data_binary");
      h.inv.zdm_data = h.data_dir + "/zdm-data";
      h.inv.journal_dir = host_var(p, "zdm_journal_dir");
      h.inv.contact_points = host_var(p, "target_contact_points | default('')");
      h.inv.port = host_var(p, "target_port | default(9042)");
      h.inv.username = host_var(p, "target_username | default('')");
      h.password = host_var(p, "target_password | default('')");
      h.inv.rate = ro.rate;
      h.inv.validate = ro.validate;
      if (ro.validate) {
        h.inv.origin_contact_points = host_var(p, "origin_contact_points | default('')");
        h.inv.origin_port = host_var(p, "origin_port | default(9042)");
        h.inv.origin_username = host_var(p, "origin_username | default('')");
        h.origin_password = host_var(p, "origin_password | default('')");
      }
      if (!h.inv.username.empty() || !h.inv.origin_username.empty())
        h.inv.credentials = h.data_dir + "/replay.credentials";
      // Target's TLS files, and origin's when validating: uploaded to <data_dir>/tls/.
      const struct {
        const char* side;
        const char* var;
        const char* file;
        std::string* field;
      } roles[] = {
          {"target", "target_tls_server_ca_filename", "target_ca.pem", &h.inv.tls_ca},
          {"target", "target_tls_client_cert_filename", "target_cert.pem", &h.inv.tls_cert},
          {"target", "target_tls_client_key_filename", "target_key.pem", &h.inv.tls_key},
          {"origin", "origin_tls_server_ca_filename", "origin_ca.pem", &h.inv.origin_tls_ca},
          {"origin", "origin_tls_client_cert_filename", "origin_cert.pem", &h.inv.origin_tls_cert},
          {"origin", "origin_tls_client_key_filename", "origin_key.pem", &h.inv.origin_tls_key}};
      for (auto& role : roles) {
        if (std::string(role.side) == "origin" && !ro.validate) continue;
        std::string f = host_var(p, std::string(role.var) + " | default('')");
        if (f.empty()) continue;
        const std::string tls_dir =
            host_var(p, std::string(role.side) + "_tls_user_dir_path | default('')");
        *role.field = h.data_dir + "/tls/" + role.file;
        h.tls.emplace_back(tls_dir + "/" + f, *role.field);
      }
    }
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }

  // One zdm-data for every host (zdm_data_binary is zdm-deploy's own: the same everywhere).
  std::string binary, binary_sha256;
  try {
    if (!plans.empty()) binary = read_local_file(plans[0].binary);
    binary_sha256 = digest_hex("sha256", binary);
  } catch (const std::exception& e) {
    err << "ERROR! zdm-data (zdm_data_binary): " << e.what() << '\n';
    return kExitError;
  }

  std::string user = local_account().user;
  char machine[256] = {};
  gethostname(machine, sizeof machine - 1);
  std::string command = redactor.apply(opts.command_line);
  std::string run_id = plan_options(opts).run_id;

  std::vector<ReplayHostResult> results(proxies.size());
  std::vector<std::string> audit_lines(proxies.size());
  parallel_for(proxies.size(), opts.forks, [&](size_t i) {
    const ProxyHost& p = proxies[i];
    const HostPlan& h = plans[i];
    ReplayHostResult& r = results[i];  // each thread writes its own result only
    r.host = p.host;
    std::unique_ptr<Transport> tr;
    try {
      if (h.inv.journal_dir.empty()) {
        r.outcome = "skipped";
        r.error = "no journal (proxy_journal_dir is \"\")";
      } else if (h.inv.contact_points.empty()) {
        r.outcome = "failed";
        r.error = "target_contact_points is not set";
      } else if (h.inv.validate && h.inv.origin_contact_points.empty()) {
        r.outcome = "failed";
        r.error =
            "origin_contact_points is not set (the check reads origin; --no-validate skips it)";
      } else {
        tr = connector->connect(connect_params(p.host, p.scope, opts.ssh));
        ExecResult x = tr->exec(
            fmt::format("mkdir -p {0}/tls && chmod 700 {0} {0}/tls", shell_quote(h.data_dir)), 30);
        if (x.rc != 0)
          throw std::runtime_error(
              fmt::format("cannot create {}: {}", h.data_dir, last_lines(x.err + x.out, 2)));
        // Uploaded once: a host that has this very binary keeps it.
        ExecResult sum = tr->exec("sha256sum " + shell_quote(h.inv.zdm_data) + " 2>/dev/null", 60);
        if (sum.rc != 0 || sum.out.substr(0, sum.out.find(' ')) != binary_sha256)
          tr->upload(binary, h.inv.zdm_data, 0755);
        for (auto& [local, remote] : h.tls) tr->upload(read_local_file(local), remote, 0600);
        if (!h.inv.credentials.empty())
          tr->upload(
              replay_credentials_text(
                  h.inv.username.empty() ? std::nullopt : std::optional(h.password),
                  h.inv.origin_username.empty() ? std::nullopt : std::optional(h.origin_password)),
              h.inv.credentials, 0600);
        x = tr->exec(replay_command(h.inv), opts.task_timeout_seconds);
        if (!h.inv.credentials.empty())  // gone already unless the shell stopped before reading it
          tr->exec("rm -f " + shell_quote(h.inv.credentials), 30);
        auto summary = parse_replay_summary(x.out);
        r.exit_status = x.rc;
        if (h.inv.validate) r.check = parse_replay_check(summary, x.out);
        r.outcome = replay_outcome(x.rc, r.check);
        r.applied = number_or_zero(summary, "applied");
        r.torn = number_or_zero(summary, "torn");
        if (x.timed_out)
          r.error = fmt::format("timed out after {} s (--timeout): run it again to resume",
                                opts.task_timeout_seconds);
        else if (x.rc != 0)
          r.error = redactor.apply(last_lines(x.err, 3));
        ExecResult s = tr->exec(journal_status_command(h.inv.zdm_data, h.inv.journal_dir), 120);
        if (s.rc == 0) {
          try {
            r.left = parse_journal_status(s.out);
          } catch (const std::invalid_argument&) {
            // Left unknown: the line says so by its absence.
          }
        }
      }
    } catch (const UnreachableError& e) {
      r.outcome = "unreachable";
      r.error = e.what();
    } catch (const std::exception& e) {
      r.outcome = "failed";
      r.error = redactor.apply(e.what());
    }
    audit_lines[i] = redactor.apply(fmt::format(
        "{} user={} machine={} run={} command={} host={} release= config_sha256= outcome={} "
        "applied={} torn={}{}",
        util::utc_now(), user, machine, run_id, Json(command).dump(), p.host, r.outcome, r.applied,
        r.torn,
        r.check
            ? fmt::format(" checked={} equal={} differing={} unverifiable={} check_errors={} "
                          "kept_unconfirmed={}",
                          r.check->checked, r.check->equal, r.check->differing,
                          r.check->unverifiable, r.check->check_errors, r.check->kept_unconfirmed)
            : std::string()));
    if (!tr) return;
    try {
      tr->exec(fmt::format("mkdir -p {0} && printf '%s\\n' {1} >> {0}/audit.log",
                           quote_host_path(h.audit_dir), shell_quote(audit_lines[i])),
               30);
    } catch (const std::exception&) {
      // Best effort: the line is also written locally, and the host's outcome is reported.
    }
  });

  {
    std::string state_dir = opts.state_dir.empty() ? default_state_dir() : opts.state_dir;
    std::error_code ec;
    fs::create_directories(state_dir, ec);
    std::ofstream audit(fs::path(state_dir) / "audit.log", std::ios::app);
    for (auto& l : audit_lines) audit << l << '\n';
  }

  int rc = replay_exit_code(results);
  if (opts.json) {
    out << replay_summary_json(results, rc).dump(2) << '\n';
  } else {
    for (auto& r : results) out << replay_result_line(r) << '\n';
  }
  out.flush();
  std::string bad, differing;
  size_t n_bad = 0;
  for (auto& r : results) {
    if (r.outcome == "differing" || r.outcome == "unconfirmed") {
      std::string what =
          r.outcome == "differing"
              ? plural(r.check->differing, "differing partition", "differing partitions")
              : plural(r.check->unverifiable + r.check->check_errors, "partition not compared",
                       "partitions not compared");
      std::string tables;
      for (auto& t : r.check->differing_tables) tables += (tables.empty() ? "" : ", ") + t;
      differing += fmt::format("{}{} ({}{}, {} kept)", differing.empty() ? "" : "; ", r.host, what,
                               tables.empty() ? "" : " in " + tables,
                               plural(r.check->kept_unconfirmed, "segment", "segments"));
    } else if (r.outcome != "ok" && r.outcome != "skipped") {
      bad += (n_bad++ ? ", " : "") + r.host + " (" + r.outcome + ")";
    }
  }
  if (!differing.empty())
    err << fmt::format(
        "ERROR! replay: the partitions the journal touched are not confirmed equal on origin "
        "and target on: {}. Those segments are kept (a rerun checks them again). Run `zdm-data "
        "validate --repair` for the tables named, or investigate (`zdm-data validate "
        "--keys-from-journal DIR` on the host names each partition).\n",
        differing);
  if (n_bad)
    err << fmt::format(
        "ERROR! replay: {} of {} proxies did not finish their journal: {}{}\n", n_bad,
        results.size(), bad,
        std::any_of(results.begin(), results.end(), [](auto& r) { return r.outcome == "torn"; })
            ? " (torn: every intact write applied; look at the segment named, then zdm-data "
              "replay --accept-torn on the host)"
            : "");
  return rc;
}

std::vector<std::string> hosts_switching_to_target(
    const std::vector<std::pair<std::string, std::string>>& primary_cluster_by_host) {
  std::vector<std::string> out;
  for (auto& [h, primary] : primary_cluster_by_host)
    if (upper(trim(primary)) == "TARGET") out.push_back(h);
  return out;
}

GateDecision journal_gate(const std::vector<TargetHostResult>& answers, bool ignore_journal) {
  GateDecision d;
  std::string blocking, unknown;
  for (auto& a : answers) {
    if (a.outcome == "ok" && a.state) {
      if (a.state->journal_unsettled > 0) {
        blocking +=
            fmt::format("{}{} ({}, {})", blocking.empty() ? "" : ", ", a.host,
                        plural(a.state->journal_unsettled, "unsettled write", "unsettled writes"),
                        byte_size_text(a.state->journal_bytes));
        d.unsettled_hosts.push_back(fmt::format("{}:{}", a.host, a.state->journal_unsettled));
      }
      continue;
    }
    std::string why = a.outcome == "unavailable"
                          ? "no target switch (404: an older zdm-proxy, or no admin token)"
                          : a.outcome + ": " + a.error;
    unknown += fmt::format("{}{} ({})", unknown.empty() ? "" : "; ", a.host, why);
  }
  if (!unknown.empty())
    d.warnings.push_back(
        "journal gate: these proxies did not say what their journal holds, they do not block "
        "the switch to TARGET: " +
        unknown);
  if (blocking.empty()) return d;
  if (ignore_journal) {
    d.warnings.push_back(
        "journal gate overridden (--ignore-journal): primary_cluster goes to TARGET while the "
        "journal still holds writes target has not got: " +
        blocking);
    return d;
  }
  d.refusal = fmt::format(
      "refusing to make TARGET the primary cluster: the write journal still holds writes target "
      "has not got on {}. Target would serve reads without them. Run `zdm-deploy replay -i "
      "INVENTORY` (then check `zdm-deploy target status`), or pass --ignore-journal to switch "
      "anyway.",
      blocking);
  return d;
}

int cutover_gate(CommonOptions& opts, bool ignore_journal, std::ostream& err,
                 std::shared_ptr<Connector> connector) {
  if (!connector) connector = default_connector();
  std::vector<ProxyHost> selected, all;
  Inventory inv;
  try {
    selected = proxy_hosts(opts, inv);
    std::vector<std::pair<std::string, std::string>> primaries;
    for (auto& p : selected)
      primaries.emplace_back(p.host, host_var(p, "primary_cluster | default('ORIGIN')"));
    if (hosts_switching_to_target(primaries).empty()) return -1;
    CommonOptions every = opts;
    every.limit.clear();
    all = proxy_hosts(every, inv);
  } catch (const std::exception&) {
    return -1;  // the run reports the inventory's or the playbook's errors itself
  }
  std::vector<std::string> homes(all.size());
  try {
    for (size_t i = 0; i < all.size(); ++i) homes[i] = host_var(all[i], "zdm_home");
  } catch (const std::exception&) {
    return -1;
  }
  std::vector<TargetHostResult> answers(all.size());
  parallel_for(all.size(), opts.forks, [&](size_t i) {
    TargetHostResult& r = answers[i];
    r.host = all[i].host;
    try {
      auto tr = connector->connect(connect_params(all[i].host, all[i].scope, opts.ssh));
      ExecResult x = tr->exec(target_admin_command(homes[i], TargetAction::kStatus, ""), 30);
      if (x.rc != 0) {
        r.outcome = "failed";
        r.error = x.rc == 127 ? "zdm-proxy not deployed there yet"
                              : fmt::format("zdmctl admin exited {}", x.rc);
      } else {
        r = classify_target_answer(all[i].host, parse_admin_answer(x.out));
      }
    } catch (const UnreachableError& e) {
      r.outcome = "unreachable";
      r.error = e.what();
    } catch (const std::exception& e) {
      r.outcome = "failed";
      r.error = e.what();
    }
  });
  GateDecision d = journal_gate(answers, ignore_journal);
  for (auto& w : d.warnings) err << "[WARNING]: " << w << '\n';
  if (d.refusal) {
    if (opts.check || opts.list_hosts) {
      err << "[WARNING]: " << *d.refusal << " (--check: nothing changes)\n";
      return -1;
    }
    err << "ERROR! " << *d.refusal << '\n';
    return kExitError;
  }
  if (ignore_journal) {
    std::string hosts;
    for (auto& h : d.unsettled_hosts) hosts += (hosts.empty() ? "" : ",") + h;
    opts.audit_note = "journal_gate=ignored" + (hosts.empty() ? "" : " unsettled=" + hosts);
  }
  err.flush();
  return -1;
}

}  // namespace zdm::deploy
