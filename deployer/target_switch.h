// zdm-deploy target disable|enable|status: the proxies' runtime target switch (GET
// /api/v1/target, POST /api/v1/target/disable|enable on each proxy's metrics port, behind its
// admin token). Reached the way the hand-over reaches /admin/*: over SSH,
// `<zdm_home>/bin/zdmctl admin METHOD PATH [BODY]` on the host, which reads the token from the
// host's secrets/proxy_admin_token and calls the proxy's metrics address; the token never leaves
// the host. All selected proxies at once (up to --forks), not rolling: a target outage affects
// every proxy the same way.
#pragma once

#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "options.h"
#include "ssh/transport.h"

namespace zdm::deploy {

using Json = nlohmann::json;

// The switch as GET /api/v1/target (and the POSTs' 200 answers) show it.
struct TargetState {
  bool enabled = true;              // false: writes go to origin only, journaled
  std::string primary_cluster;      // "ORIGIN" or "TARGET"
  std::string target_failure_mode;  // "fail" or "isolate"
  bool isolated = false;            // isolate mode in effect
  std::string journal_dir;          // "" when the proxy has no journal
  long long journal_bytes = 0;      // bytes the journal takes on disk
  long long journal_unsettled = 0;  // journaled writes target has not acknowledged yet
};

// Parses the proxy's JSON ({"enabled": true, "primary_cluster": "ORIGIN", "target_failure_mode":
// "fail", "isolated": false, "journal": {"dir": "", "bytes": 0, "unsettled": 0}}; other fields
// ignored). Throws std::invalid_argument naming the field that is missing or of another type, or
// saying the text is not JSON.
TargetState parse_target_state(const std::string& body);

// The same shape back (for --json).
Json target_state_json(const TargetState& s);

// What `zdmctl admin METHOD PATH [BODY]` printed: the HTTP status (0: the proxy did not answer)
// on the first line, then the body.
struct AdminAnswer {
  int status = 0;
  std::string body;
};
// Throws std::invalid_argument when the first line is not a status code (not zdmctl admin's
// output, e.g. an older zdmctl's usage text).
AdminAnswer parse_admin_answer(const std::string& zdmctl_output);

enum class TargetAction { kStatus, kDisable, kEnable };

// "status", "disable", "enable" → the action; nullopt for anything else.
std::optional<TargetAction> parse_target_action(const std::string& word);
const char* target_action_name(TargetAction a);

// The shell command run on the host: `<zdm_home>/bin/zdmctl admin GET /api/v1/target`, or
// `... admin POST /api/v1/target/disable|enable '{"by":"<by>"}'`; every word quoted.
std::string target_admin_command(const std::string& zdm_home, TargetAction a,
                                 const std::string& by);

// One proxy's outcome.
struct TargetHostResult {
  std::string host;
  // "ok" (200), "refused" (409), "unavailable" (404: a zdm-proxy without the target switch, or
  // without proxy_admin_token), "failed" (any other answer, or none), "unreachable" (SSH).
  std::string outcome;
  int http_status = 0;               // 0: no HTTP answer
  std::optional<TargetState> state;  // with "ok"
  std::string error;                 // why, when not "ok" (for "refused" the proxy's "error")
};

// Classifies the answer `a` of `host`'s proxy.
TargetHostResult classify_target_answer(const std::string& host, const AdminAnswer& a);

// Checked before any host is contacted: `target disable` while primary_cluster (as the inventory
// gives it to each host: host name → value) is TARGET is refused. The message naming the hosts
// and why, or nullopt when disabling may go ahead.
std::optional<std::string> disable_refusal(
    const std::vector<std::pair<std::string, std::string>>& primary_cluster_by_host);

// "12.0 KiB": bytes in B, KiB, MiB, GiB (one decimal above B).
std::string byte_size_text(long long bytes);

// One host's line of the output, e.g. "proxy1: target disabled, isolated no, journal 4.0 KiB,
// 3 unsettled" or "proxy2: refused (409): target is the primary cluster ...".
std::string target_result_line(const TargetHostResult& r);

// For --json: {"action", "exit_code", "hosts": [{"host", "outcome", "http_status", "error",
// "target": <target_state_json> or null}]}.
Json target_summary_json(TargetAction a, const std::vector<TargetHostResult>& results, int rc);

// The ExitCode: kExitUnreachable when a host was unreachable, else kExitHostFailed when any was
// not "ok", else kExitOk.
int target_exit_code(const std::vector<TargetHostResult>& results);

// `zdm-deploy status`'s cells for a row's "target" (target_state_json, or null when the proxy
// has no target switch or did not say): TARGET ("enabled", "disabled", with ",isolated"),
// JOURNAL (its size, "-" without a journal) and UNSETTLED; "-" for each when null.
std::vector<std::string> target_status_cells(const Json& target);

// zdm-deploy target ACTION: every selected proxy at once (up to opts.forks). Prints one line per
// host (or --json), the hosts not "ok" on `err`; disable and enable send {"by": "user@machine:
// <command line>"} and append one audit line per host (outcome ok|refused|unavailable|failed|
// unreachable, target=enabled|disabled|-) to the host's audit.log and the state directory's.
// `disable` is refused before any host is contacted when a proxy's primary_cluster is TARGET.
// `connector` opens the hosts' transports (null: SSH). Returns an ExitCode
// (target_exit_code; kExitUnreachable for an inventory error, kExitError when refused).
int target_command(const CommonOptions& opts, TargetAction action, std::ostream& out,
                   std::ostream& err, std::shared_ptr<Connector> connector = nullptr);

}  // namespace zdm::deploy
