#include "target_switch.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <ostream>

#include <fmt/format.h>

#include "commands.h"
#include "engine/executor.h"
#include "preflight.h"
#include "run.h"
#include "ssh/lock.h"

#include "common/util/clock.h"
#include "common/util/strings.h"

namespace zdm::deploy {
namespace {

namespace fs = std::filesystem;

// The field `key` of `j` (path names it in errors), which must have `type`.
const Json& field(const Json& j, const char* key, const std::string& path, Json::value_t type,
                  const char* type_name) {
  auto it = j.find(key);
  if (it == j.end()) throw std::invalid_argument(fmt::format("target state: no '{}{}'", path, key));
  bool ok =
      it->type() == type || (type == Json::value_t::number_integer && it->is_number_unsigned());
  if (!ok)
    throw std::invalid_argument(
        fmt::format("target state: '{}{}': expected {}, got {}", path, key, type_name, it->dump()));
  return *it;
}

using util::trim;
using util::upper;

// The proxy's {"error": "..."}, else the body itself (trimmed, at most 300 characters).
std::string error_text(const std::string& body) {
  try {
    Json j = Json::parse(body);
    if (j.is_object() && j.contains("error") && j["error"].is_string())
      return j["error"].get<std::string>();
  } catch (const std::exception&) {
    // Not JSON: the body is shown as it is.
  }
  std::string t = trim(body);
  return t.size() > 300 ? t.substr(0, 300) + "..." : t;
}

std::string target_word(const TargetHostResult& r) {
  return r.state ? (r.state->enabled ? "enabled" : "disabled") : "-";
}

}  // namespace

TargetState parse_target_state(const std::string& body) {
  Json j;
  try {
    j = Json::parse(body);
  } catch (const std::exception&) {
    std::string t = trim(body);
    throw std::invalid_argument(
        fmt::format("target state: not JSON: '{}'", t.size() > 200 ? t.substr(0, 200) + "..." : t));
  }
  if (!j.is_object())
    throw std::invalid_argument("target state: expected a JSON object, got " + j.dump());
  using T = Json::value_t;
  TargetState s;
  s.enabled = field(j, "enabled", "", T::boolean, "true or false").get<bool>();
  s.primary_cluster = field(j, "primary_cluster", "", T::string, "a string").get<std::string>();
  s.target_failure_mode =
      field(j, "target_failure_mode", "", T::string, "a string").get<std::string>();
  s.isolated = field(j, "isolated", "", T::boolean, "true or false").get<bool>();
  const Json& journal = field(j, "journal", "", T::object, "an object");
  s.journal_dir = field(journal, "dir", "journal.", T::string, "a string").get<std::string>();
  s.journal_bytes =
      field(journal, "bytes", "journal.", T::number_integer, "an integer").get<long long>();
  s.journal_unsettled =
      field(journal, "unsettled", "journal.", T::number_integer, "an integer").get<long long>();
  return s;
}

Json target_state_json(const TargetState& s) {
  return {
      {"enabled", s.enabled},
      {"primary_cluster", s.primary_cluster},
      {"target_failure_mode", s.target_failure_mode},
      {"isolated", s.isolated},
      {"journal",
       {{"dir", s.journal_dir}, {"bytes", s.journal_bytes}, {"unsettled", s.journal_unsettled}}}};
}

AdminAnswer parse_admin_answer(const std::string& out) {
  auto nl = out.find('\n');
  std::string first = trim(out.substr(0, nl));
  if (first.empty() || first.size() > 3 ||
      !std::all_of(first.begin(), first.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::string t = trim(out);
    throw std::invalid_argument(fmt::format("zdmctl admin printed no HTTP status: '{}'",
                                            t.size() > 200 ? t.substr(0, 200) + "..." : t));
  }
  AdminAnswer a;
  a.status = std::stoi(first);
  if (nl != std::string::npos) a.body = out.substr(nl + 1);
  return a;
}

std::optional<TargetAction> parse_target_action(const std::string& word) {
  if (word == "status") return TargetAction::kStatus;
  if (word == "disable") return TargetAction::kDisable;
  if (word == "enable") return TargetAction::kEnable;
  return std::nullopt;
}

const char* target_action_name(TargetAction a) {
  switch (a) {
    case TargetAction::kStatus:
      return "status";
    case TargetAction::kDisable:
      return "disable";
    case TargetAction::kEnable:
      return "enable";
  }
  return "?";
}

std::string target_admin_command(const std::string& zdm_home, TargetAction a,
                                 const std::string& by) {
  std::string zdmctl = shell_quote(zdm_home + "/bin/zdmctl");
  if (a == TargetAction::kStatus) return zdmctl + " admin GET /api/v1/target";
  return fmt::format("{} admin POST {} {}", zdmctl,
                     shell_quote(std::string("/api/v1/target/") + target_action_name(a)),
                     shell_quote(Json{{"by", by}}.dump()));
}

TargetHostResult classify_target_answer(const std::string& host, const AdminAnswer& a) {
  TargetHostResult r;
  r.host = host;
  r.http_status = a.status;
  switch (a.status) {
    case 200:
      try {
        r.state = parse_target_state(a.body);
        r.outcome = "ok";
      } catch (const std::invalid_argument& e) {
        r.outcome = "failed";
        r.error = e.what();
      }
      break;
    case 409:
      r.outcome = "refused";
      r.error = error_text(a.body);
      break;
    case 404:
      r.outcome = "unavailable";
      r.error =
          "no target switch (404): a zdm-proxy without /api/v1/target, or without "
          "proxy_admin_token";
      break;
    case 401:
      r.outcome = "failed";
      r.error =
          "401: the proxy's admin token is not the host's secrets/proxy_admin_token (roll out "
          "the configuration again)";
      break;
    case 0:
      r.outcome = "failed";
      r.error = "no answer from the proxy's metrics port (is it running? zdm-deploy status)";
      break;
    default:
      r.outcome = "failed";
      r.error = fmt::format("HTTP {}: {}", a.status, error_text(a.body));
  }
  return r;
}

std::optional<std::string> disable_refusal(
    const std::vector<std::pair<std::string, std::string>>& primary_cluster_by_host) {
  std::string hosts;
  for (auto& [h, primary] : primary_cluster_by_host)
    if (upper(trim(primary)) == "TARGET") hosts += (hosts.empty() ? "" : ", ") + h;
  if (hosts.empty()) return std::nullopt;
  return fmt::format(
      "target disable refused: primary_cluster is TARGET ({}). Target is the source of truth: "
      "its writes cannot be held back while it is the primary, and the proxies refuse it too "
      "(409). Make origin the primary first (primary_cluster: ORIGIN, then rolling-update).",
      hosts);
}

std::string byte_size_text(long long bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  return fmt::format("{:.1f} {}", v, units[u]);
}

std::string target_result_line(const TargetHostResult& r) {
  if (r.outcome == "ok" && r.state) {
    const TargetState& s = *r.state;
    std::string journal = s.journal_dir.empty()
                              ? std::string("no journal")
                              : fmt::format("journal {}, {} unsettled",
                                            byte_size_text(s.journal_bytes), s.journal_unsettled);
    return fmt::format("{}: target {}, isolated {}, {}", r.host, s.enabled ? "enabled" : "disabled",
                       s.isolated ? "yes" : "no", journal);
  }
  if (r.outcome == "refused") return fmt::format("{}: refused (409): {}", r.host, r.error);
  return fmt::format("{}: {}: {}", r.host, r.outcome, r.error);
}

Json target_summary_json(TargetAction a, const std::vector<TargetHostResult>& results, int rc) {
  Json hosts = Json::array();
  for (auto& r : results)
    hosts.push_back({{"host", r.host},
                     {"outcome", r.outcome},
                     {"http_status", r.http_status},
                     {"error", r.error},
                     {"target", r.state ? target_state_json(*r.state) : Json(nullptr)}});
  return {{"action", target_action_name(a)}, {"exit_code", rc}, {"hosts", hosts}};
}

int target_exit_code(const std::vector<TargetHostResult>& results) {
  bool unreachable = false, failed = false;
  for (auto& r : results) {
    unreachable |= r.outcome == "unreachable";
    failed |= r.outcome != "ok";
  }
  return unreachable ? kExitUnreachable : failed ? kExitHostFailed : kExitOk;
}

std::vector<std::string> target_status_cells(const Json& t) {
  if (!t.is_object()) return {"-", "-", "-"};
  try {
    TargetState s = parse_target_state(t.dump());
    std::string state =
        std::string(s.enabled ? "enabled" : "disabled") + (s.isolated ? ",isolated" : "");
    if (s.journal_dir.empty()) return {state, "-", "-"};
    return {state, byte_size_text(s.journal_bytes), std::to_string(s.journal_unsettled)};
  } catch (const std::invalid_argument&) {
    return {"-", "-", "-"};
  }
}

int target_command(const CommonOptions& opts, TargetAction action, std::ostream& out,
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
  const bool changes = action != TargetAction::kStatus;
  std::vector<std::string> homes(proxies.size()), audit_dirs(proxies.size());
  try {
    std::vector<std::pair<std::string, std::string>> primaries;
    for (size_t i = 0; i < proxies.size(); ++i) {
      homes[i] = host_var(proxies[i], "zdm_home");
      audit_dirs[i] = host_lock_dir(proxies[i].host, proxies[i].scope, inv);
      primaries.emplace_back(proxies[i].host,
                             host_var(proxies[i], "primary_cluster | default('ORIGIN')"));
    }
    if (action == TargetAction::kDisable) {
      if (auto why = disable_refusal(primaries)) {
        err << "ERROR! " << *why << '\n';
        return kExitError;
      }
    }
  } catch (const std::exception& e) {
    err << "ERROR! " << e.what() << '\n';
    return kExitUnreachable;
  }

  // Who asks, as the audit trail names a run: the proxies log it at WARN.
  std::string user = local_account().user;
  char machine[256] = {};
  gethostname(machine, sizeof machine - 1);
  std::string command = redactor.apply(opts.command_line);
  std::string by = fmt::format("{}@{}: {}", user, machine, command);
  std::string run_id = plan_options(opts).run_id;

  std::vector<TargetHostResult> results(proxies.size());
  std::vector<std::string> audit_lines(proxies.size());
  parallel_for(proxies.size(), opts.forks, [&](size_t i) {
    const ProxyHost& p = proxies[i];
    TargetHostResult& r = results[i];  // each thread writes its own result only
    r.host = p.host;
    std::unique_ptr<Transport> tr;
    try {
      tr = connector->connect(connect_params(p.host, p.scope, opts.ssh));
      ExecResult x = tr->exec(target_admin_command(homes[i], action, by), 30);
      if (x.rc != 0) {
        r.outcome = "failed";
        std::string e = trim(x.err.empty() ? x.out : x.err);
        r.error = x.rc == 127
                      ? fmt::format("no {}/bin/zdmctl: not deployed by zdm-deploy", homes[i])
                      : fmt::format("zdmctl admin exited {}{}", x.rc,
                                    e.empty() ? "" : ": " + e.substr(0, 300));
      } else {
        r = classify_target_answer(p.host, parse_admin_answer(x.out));
      }
    } catch (const UnreachableError& e) {
      r.outcome = "unreachable";
      r.error = e.what();
    } catch (const std::exception& e) {
      r.outcome = "failed";
      r.error = e.what();
    }
    if (!changes) return;
    audit_lines[i] = redactor.apply(fmt::format(
        "{} user={} machine={} run={} command={} host={} release= config_sha256= outcome={} "
        "target={}",
        util::utc_now(), user, machine, run_id, Json(command).dump(), p.host, r.outcome,
        target_word(r)));
    if (!tr) return;
    try {
      tr->exec(fmt::format("mkdir -p {0} && printf '%s\\n' {1} >> {0}/audit.log",
                           quote_host_path(audit_dirs[i]), shell_quote(audit_lines[i])),
               30);
    } catch (const std::exception&) {
      // Best effort: the line is also written locally, and the host's outcome is reported.
    }
  });

  if (changes) {
    std::string state_dir = opts.state_dir.empty() ? default_state_dir() : opts.state_dir;
    std::error_code ec;
    fs::create_directories(state_dir, ec);
    std::ofstream audit(fs::path(state_dir) / "audit.log", std::ios::app);
    for (auto& l : audit_lines) audit << l << '\n';
  }

  int rc = target_exit_code(results);
  if (opts.json) {
    out << target_summary_json(action, results, rc).dump(2) << '\n';
  } else {
    for (auto& r : results) out << target_result_line(r) << '\n';
  }
  out.flush();
  std::string bad;
  size_t n_bad = 0;
  for (auto& r : results)
    if (r.outcome != "ok") bad += (n_bad++ ? ", " : "") + r.host + " (" + r.outcome + ")";
  if (n_bad)
    err << fmt::format("ERROR! target {}: {} of {} proxies did not answer ok: {}\n",
                       target_action_name(action), n_bad, results.size(), bad);
  return rc;
}

}  // namespace zdm::deploy
