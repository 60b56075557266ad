// zdm-deploy replay: each proxy's write journal (proxy_journal_dir, local to the proxy host)
// applied to target by `zdm-data replay`, run ON the proxy host; and the cutover gate: deploy
// and rolling-update refuse to make TARGET the primary cluster while a proxy's journal still
// holds writes target has not got (docs/deployer.md "Replaying the journal, the cutover gate").
#pragma once

#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "options.h"
#include "ssh/transport.h"
#include "target_switch.h"

namespace zdm::deploy {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// zdm-data replay on a proxy host.

// What `zdm-data replay` needs of target on one host, from the variables the proxy's own
// configuration is rendered from (target_contact_points, target_port, target_username,
// target_password, target_tls_*). TLS paths are the ones on the host (uploaded by the command).
struct ReplayInvocation {
  std::string zdm_data;        // the binary on the host: <zdm_home>/zdm-data/zdm-data
  std::string journal_dir;     // the host's proxy_journal_dir
  std::string contact_points;  // target_contact_points ("h1,h2")
  std::string port = "9042";   // target_port
  std::string username;        // "" = no authentication
  std::string credentials;     // host path of the 0600 password file ("" = none)
  std::string tls_ca;          // host paths, "" when not used
  std::string tls_cert;
  std::string tls_key;
  std::optional<long long> rate;  // --rate (writes/s, 0 = no limit); nullopt: zdm-data's default
};

// The shell command run on the host: with a password file, `set -a && . FILE && set +a &&
// rm -f FILE && exec ZDM_DATA replay ...` (the password reaches zdm-data through
// $ZDM_DATA_TARGET_PASSWORD, never on a command line: not in ps, not in this text), else
// `exec ZDM_DATA replay ...`. Every word shell-quoted; `--progress none` (the summary line is
// what is read back).
std::string replay_command(const ReplayInvocation& r);

// The password file's text: "ZDM_DATA_TARGET_PASSWORD='<password>'\n" (shell-quoted).
std::string replay_credentials_text(const std::string& password);

// `ZDM_DATA journal-status --journal DIR --json`, quoted.
std::string journal_status_command(const std::string& zdm_data, const std::string& journal_dir);

// zdm-data replay's summary line ("replay: segments=3 applied=7 skipped_settled=2
// skipped_replayed=0 torn=1 deleted=1 retries=2 seconds=0.22"), the last such line of `out`:
// key → value (as text). Empty when there is none (zdm-data stopped before its summary).
std::map<std::string, std::string> parse_replay_summary(const std::string& out);

// What journal-status --json says is left: {"segments", "bytes", "pending", "torn": [...]}.
struct JournalLeft {
  long long segments = 0;
  long long bytes = 0;
  long long pending = 0;  // writes still to replay
  long long torn = 0;     // segments with a torn tail
};
// Throws std::invalid_argument when `json_text` is not journal-status's JSON object.
JournalLeft parse_journal_status(const std::string& json_text);

// One proxy host's replay.
struct ReplayHostResult {
  std::string host;
  // "ok" (exit 0), "torn" (exit 4: every intact write applied, a torn tail kept), "failed"
  // (any other exit, an upload or a setting missing), "unreachable" (SSH), "skipped" (the host
  // has no journal: proxy_journal_dir set to "").
  std::string outcome;
  int exit_status = -1;  // zdm-data's exit status (-1: it did not run)
  long long applied = 0;
  long long torn = 0;
  std::optional<JournalLeft> left;  // journal-status afterwards (nullopt: could not tell)
  std::string error;                // why, when not "ok" (zdm-data's last stderr lines)
};

// Outcome from zdm-data's exit status: 0 "ok", 4 "torn", anything else "failed".
std::string replay_outcome(int exit_status);

// "proxy1: replay ok (exit 0): 12 writes applied, 0 torn tails; left: 0 writes, 1 segment,
// 1.2 KiB" (the error after the figures when not ok).
std::string replay_result_line(const ReplayHostResult& r);

// kExitOk when every host is "ok" or "skipped", kExitUnreachable when one was unreachable,
// else kExitHostFailed.
int replay_exit_code(const std::vector<ReplayHostResult>& results);

// For --json: {"exit_code", "hosts": [{"host", "outcome", "exit_status", "applied", "torn",
// "error", "left": {"segments", "bytes", "pending", "torn"} or null}]}.
Json replay_summary_json(const std::vector<ReplayHostResult>& results, int rc);

struct ReplayOptions {
  std::optional<long long> rate;  // --rate N
};

// zdm-deploy replay: on every selected proxy host (up to opts.forks at once), uploads zdm-data
// (zdm_data_binary) to <zdm_home>/zdm-data/zdm-data and target's TLS files to
// <zdm_home>/zdm-data/tls/, writes target's password to a 0600 file that the command deletes
// as soon as it has read it, runs `zdm-data replay` on the host's journal (bounded by
// opts.task_timeout_seconds, 0: none), then `zdm-data journal-status --json`. Prints one line
// per host (or --json), names the hosts that failed on `err`, appends one audit line per host
// (outcome=..., applied=N) to the host's audit.log and the state directory's. Returns an
// ExitCode (replay_exit_code; kExitUnreachable for an inventory error).
int replay_command_run(const CommonOptions& opts, const ReplayOptions& ro, std::ostream& out,
                       std::ostream& err, std::shared_ptr<Connector> connector = nullptr);

// ---------------------------------------------------------------------------------------------
// The cutover gate.

// The hosts whose primary_cluster (as the inventory and -e give it to each: host → value)
// is TARGET, in the given order.
std::vector<std::string> hosts_switching_to_target(
    const std::vector<std::pair<std::string, std::string>>& primary_cluster_by_host);

struct GateDecision {
  // Set: refuse the run (the message names each host with unsettled writes and their bytes,
  // and says to run `zdm-deploy replay`). With ignore_journal it stays unset and the same
  // facts go to `warnings`.
  std::optional<std::string> refusal;
  std::vector<std::string> warnings;  // proxies that could not tell (404, not running, SSH)
  // Hosts with unsettled writes: "host:writes" (for the audit line), empty when none.
  std::vector<std::string> unsettled_hosts;
};

// The decision from every proxy's answer to GET /api/v1/target (classify_target_answer):
// "ok" with journal.unsettled > 0 blocks; "unavailable" (404), "failed" (no answer) and
// "unreachable" do not block and are named in a warning.
GateDecision journal_gate(const std::vector<TargetHostResult>& answers, bool ignore_journal);

// Before deploy / rolling-update: when any selected proxy is to run with primary_cluster
// TARGET, asks every proxy of the inventory (--limit ignored: any journal's writes are
// missing on target) for its journal (zdmctl admin GET /api/v1/target over SSH) and applies
// journal_gate. Prints the warnings and the refusal on `err`. Returns -1 to go on, else the
// ExitCode (kExitError when refused). With ignore_journal, sets opts.audit_note to
// "journal_gate=ignored" (plus the hosts) for the run's audit lines. Inventory errors return
// -1: the run reports them itself.
int cutover_gate(CommonOptions& opts, bool ignore_journal, std::ostream& err,
                 std::shared_ptr<Connector> connector = nullptr);

}  // namespace zdm::deploy
