// zdm-data's command line: the command, both clusters' connection settings (auth and TLS like
// the proxy's; replay and journal-status need target's only, or none), the job's scope and
// limits. Parsing is pure (argv in, Options or one error line
// out) so it is unit-tested.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/client/session.h"

namespace zdm::data {

/// A command line that cannot work: what() is one line naming the option.
class OptionsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ClusterOptions {
  std::vector<std::string> contact_points;
  int port = 9042;
  std::string username, password;
  std::string tls_ca, tls_cert, tls_key;
  bool tls_hostname_check = true;
  int max_protocol_version = 5;
  std::string consistency = "LOCAL_QUORUM";
};

enum class Command { kBackfill, kValidate, kReplay, kJournalStatus };
enum class ProgressMode { kAuto, kBar, kLines, kNone };

struct Options {
  Command command = Command::kBackfill;
  ClusterOptions origin, target;
  std::string compression = "none";
  std::string keyspace;
  std::vector<std::string> tables;  // empty: every table of the keyspace
  int threads = 1;
  int splits = 0;         // 0: automatic
  int parallel = 4;       // token ranges in progress at once, per thread
  int concurrency = 256;  // write requests in flight, per thread
  int page_size = 1000;
  double rate_rows = 0;  // rows/s over all threads (0: unlimited)
  double rate_mb = 0;    // MB/s of cell values over all threads (0: unlimited)
  int request_timeout_ms = 12000;
  int connect_timeout_ms = 10000;
  int retries = 9;         // attempts after the first
  std::string checkpoint;  // backfill: default zdm-data-<keyspace>.checkpoint
  bool resume = true;      // backfill: --restart ignores (and rewrites) the checkpoint
  std::string metrics;     // ADDRESS:PORT of the Prometheus endpoint, empty: none
  ProgressMode progress = ProgressMode::kAuto;
  int progress_interval_s = 10;
  std::string log_level = "info";
  // validate
  double sample_percent = 100;
  uint64_t seed = 1;
  bool writetime = false;
  bool repair = false;
  bool delete_extra = false;
  bool json = false;  // validate, journal-status
  int max_examples = 20;
  // replay, journal-status
  std::vector<std::string> journals;  // --journal directories
  double rate_writes = 2000;          // writes/s (0: unlimited)
  bool dry_run = false;
  bool accept_torn = false;
  bool delete_all = false;
  std::string replay_consistency;  // empty: each request's own
  // replay --validate, validate --keys-from-journal: the partition check (journal_check.h)
  bool replay_validate = false;                // replay: check the partitions of each segment
  std::vector<std::string> keys_from_journal;  // validate: journal directories to check
  int check_max_rows = 10000;                  // rows of a partition at most; more: unverifiable
};

/// What main does with a command line: run a job, or print text and exit with a code.
struct ParseResult {
  std::optional<Options> options;
  std::string text;  // help or version
  int exit_code = 0;
};

/// Parses argv. Throws OptionsError. Passwords left empty are read from the environment
/// (ZDM_DATA_ORIGIN_PASSWORD, ZDM_DATA_TARGET_PASSWORD) through `getenv`.
ParseResult parse_options(int argc, const char* const* argv,
                          const std::function<const char*(const char*)>& getenv = nullptr);

/// The usage text.
std::string usage();

/// The wire code of a consistency level name ("LOCAL_QUORUM"); `option` names the option in
/// the error. Throws OptionsError.
cql::Consistency parse_consistency(const std::string& name, const std::string& option);

/// ClusterConfig for one side ("origin"/"target"), TLS context included. Throws OptionsError
/// (naming the option) on an unreadable certificate or key.
ClusterConfig cluster_config(const Options& o, bool origin);

}  // namespace zdm::data
