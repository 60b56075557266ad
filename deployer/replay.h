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

// What `zdm-data replay` needs of target (and, with validate, of origin) on one host, from the
// variables the proxy's own configuration is rendered from (target_contact_points, target_port,
// target_username, target_password, target_tls_*; origin_* likewise). TLS paths are the ones on
// the host (uploaded by the command).
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
  // --validate --origin ...: each segment's partitions read back from origin and target and
  // compared; a segment is deleted only when all are equal. Origin's password travels in the
  // same credentials file (ZDM_DATA_ORIGIN_PASSWORD).
  bool validate = false;
  std::string origin_contact_points;  // origin_contact_points
  std::string origin_port = "9042";   // origin_port
  std::string origin_username;        // "" = no authentication
  std::string origin_tls_ca;          // host paths, "" when not used
  std::string origin_tls_cert;
  std::string origin_tls_key;
};

// The shell command run on the host: with a password file, `set -a && . FILE && set +a &&
// rm -f FILE && exec ZDM_DATA replay ...` (the passwords reach zdm-data through
// $ZDM_DATA_TARGET_PASSWORD and $ZDM_DATA_ORIGIN_PASSWORD, never on a command line: not in ps,
// not in this text), else `exec ZDM_DATA replay ...`. Every word shell-quoted; `--progress
// none` (the summary line is what is read back); with validate, `--validate --origin ...`.
std::string replay_command(const ReplayInvocation& r);

// The password file's text, one shell-quoted line per password given:
// "ZDM_DATA_TARGET_PASSWORD='<password>'\n", "ZDM_DATA_ORIGIN_PASSWORD='<password>'\n".
std::string replay_credentials_text(const std::optional<std::string>& target_password,
                                    const std::optional<std::string>& origin_password = {});

// `ZDM_DATA journal-status --journal DIR --json`, quoted.
std::string journal_status_command(const std::string& zdm_data, const std::string& journal_dir);

// zdm-data replay's summary line ("replay: segments=3 applied=7 skipped_settled=2
// skipped_replayed=0 torn=1 deleted=1 retries=2 seconds=0.22"; with --validate also
// "checked= equal= differing= unverifiable= check_errors= kept_unconfirmed=" before seconds),
// the last such line of `out`: key → value (as text). Empty when there is none (zdm-data
// stopped before its summary).
std::map<std::string, std::string> parse_replay_summary(const std::string& out);

// What replay --validate found on one host (the summary line's check counts).
struct ReplayCheck {
  long long checked = 0;  // partitions compared
  long long equal = 0;
  long long differing = 0;
  long long unverifiable = 0;      // not comparable (function-call keys, too many rows, ...)
  long long check_errors = 0;      // reads that failed
  long long kept_unconfirmed = 0;  // segments kept because a check did not confirm them
  // The tables of zdm-data's "differing partition: KS.TABLE ..." lines, sorted, unique.
  std::vector<std::string> differing_tables;
};

// The check counts of a summary (parse_replay_summary) and the differing tables named in
// `out`; nullopt when the summary has no "checked" (no --validate, or no summary).
std::optional<ReplayCheck> parse_replay_check(const std::map<std::string, std::string>& summary,
                                              const std::string& out);

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
  // "ok" (exit 0), "torn" (exit 4: every intact write applied, a torn tail kept),
  // "differing" (--validate: partitions differ on target, their segments kept), "unconfirmed"
  // (--validate: segments kept because partitions could not be compared), "failed" (any other
  // exit, an upload or a setting missing), "unreachable" (SSH), "skipped" (the host has no
  // journal: proxy_journal_dir set to "").
  std::string outcome;
  int exit_status = -1;  // zdm-data's exit status (-1: it did not run)
  long long applied = 0;
  long long torn = 0;
  std::optional<JournalLeft> left;   // journal-status afterwards (nullopt: could not tell)
  std::string error;                 // why, when not "ok" (zdm-data's last stderr lines)
  std::optional<ReplayCheck> check;  // --validate's counts (nullopt: not validated / no summary)
};

// Outcome from zdm-data's exit status: 0 "ok", 4 "torn", anything else "failed"; with check
// counts, exit 1 with differing partitions is "differing", with only segments kept unconfirmed
// "unconfirmed".
std::string replay_outcome(int exit_status, const std::optional<ReplayCheck>& check = {});

// "proxy1: replay ok (exit 0): 12 writes applied, 0 torn tails; checked 5 partitions: 5 equal,
// 0 differing, 0 unverifiable, 0 check errors, 0 segments kept; left: 0 writes, 1 segment,
// 1.2 KiB" (the check only when validated; the error after the figures when not ok).
std::string replay_result_line(const ReplayHostResult& r);

// kExitOk when every host is "ok" or "skipped", kExitUnreachable when one was unreachable,
// else kExitHostFailed.
int replay_exit_code(const std::vector<ReplayHostResult>& results);

// For --json: {"exit_code", "hosts": [{"host", "outcome", "exit_status", "applied", "torn",
// "error", "left": {"segments", "bytes", "pending", "torn"} or null, "check": {"checked",
// "equal", "differing", "unverifiable", "check_errors", "kept_unconfirmed", "differing_tables"}
// or null}]}.
Json replay_summary_json(const std::vector<ReplayHostResult>& results, int rc);

struct ReplayOptions {
  std::optional<long long> rate;  // --rate N
  bool validate = true;           // --no-validate: false (no --validate, origin not needed)
};

// zdm-deploy replay: on every selected proxy host (up to opts.forks at once), uploads zdm-data
// (zdm_data_binary) to <zdm_home>/zdm-data/zdm-data and target's TLS files to
// <zdm_home>/zdm-data/tls/ (and origin's, validating), writes the passwords to a 0600 file that
// the command deletes as soon as it has read it, runs `zdm-data replay` on the host's journal
// (with ro.validate: `--validate` against origin; bounded by opts.task_timeout_seconds, 0:
// none), then `zdm-data journal-status --json`. Prints one line per host (or --json), names the
// hosts that failed (and those whose partitions differ) on `err`, appends one audit line per
// host (outcome=..., applied=N, torn=N, and the check counts) to the host's audit.log and the
// state directory's. Returns an ExitCode (replay_exit_code; kExitUnreachable for an inventory
// error).
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
