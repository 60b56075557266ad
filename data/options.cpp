#include "data/options.h"

#include <algorithm>
#include <boost/program_options.hpp>
#include <sstream>

#include "common/net/tls.h"

namespace zdm::data {

namespace po = boost::program_options;

namespace {

const char* kUsage =
    R"(usage: zdm-data COMMAND --origin HOSTS --target HOSTS -k KEYSPACE [-t TABLE]... [options]
       zdm-data replay --journal DIR [--journal DIR]... --target HOSTS [--validate --origin HOSTS]
       zdm-data validate --keys-from-journal DIR [--keys-from-journal DIR]... --origin HOSTS
                --target HOSTS
       zdm-data journal-status --journal DIR [--journal DIR]... [--json]

commands:
  backfill   copy every row of origin's tables to target, token range by token range, with
             each cell's writetime (USING TIMESTAMP) and remaining TTL (USING TTL), so a newer
             write on target (the proxy's dual writes) always wins and expired data stays
             expired; resumable through a checkpoint file
  validate   scan both clusters by the same token ranges and compare every row by primary key
             and column value (--writetime: and writetimes); --repair writes origin's version
             of missing and differing rows to target with origin's writetimes
  replay     apply the proxy's write journal (proxy_journal_dir) to target: every write without
             a settlement, in journal order per writer, as the QUERY or BATCH the client sent
             (its timestamp kept: an older write never overwrites a newer one); resumable (a
             checkpoint "<segment>.replayed" next to each segment); a segment all applied is
             deleted unless it is its writer's newest (the proxy may still append to it) and
             that writer's run is the directory's newest (--delete-all: the proxy is stopped)
             --validate: after each segment, the partitions its writes touched are read from
             origin and target and compared; the segment goes only when all are equal
  journal-status
             what the journal holds: segments, bytes, writes to replay by table, torn tails

exit codes: 0 done (validate: no difference remains), 1 ranges failed or differences remain
            (replay: a write failed for good: target's error, or every retry used; rerun to
            resume), 2 bad command line, keyspace, table or schema (replay: a journal that
            cannot be read, a record of a protocol version target does not speak), 3 a cluster
            cannot be reached, 4 replay: every intact write applied but a torn tail was found
            (a crash mid-append; --accept-torn: 0), 130 stopped by a signal
)";

std::vector<std::string> split_list(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& item : in) {
    std::stringstream ss(item);
    std::string part;
    while (std::getline(ss, part, ','))
      if (!part.empty()) out.push_back(part);
  }
  return out;
}

void add_cluster(po::options_description& d, const std::string& side, ClusterOptions& c) {
  const std::string s = side;
  d.add_options()((s).c_str(), po::value<std::vector<std::string>>()->composing(),
                  ("contact points of " + s + ": host[:port], comma-separated").c_str())(
      (s + "-port").c_str(), po::value(&c.port)->default_value(9042), "CQL port")(
      (s + "-username").c_str(), po::value(&c.username), "PLAIN authentication user")(
      (s + "-password").c_str(), po::value(&c.password),
      ("its password (default: $ZDM_DATA_" + std::string(side == "origin" ? "ORIGIN" : "TARGET") +
       "_PASSWORD)")
          .c_str())((s + "-tls-ca").c_str(), po::value(&c.tls_ca),
                    "PEM CA: TLS on, the nodes' certificates verified against it")(
      (s + "-tls-cert").c_str(), po::value(&c.tls_cert), "PEM client certificate (mutual TLS)")(
      (s + "-tls-key").c_str(), po::value(&c.tls_key), "PEM key of the client certificate")(
      (s + "-tls-no-hostname-check").c_str(), po::bool_switch(),
      "accept a certificate that does not name the node's address")(
      (s + "-protocol-version").c_str(), po::value(&c.max_protocol_version)->default_value(5),
      "highest protocol version to try (4 or 5; negotiated down)")(
      (s + "-consistency").c_str(), po::value(&c.consistency)->default_value("LOCAL_QUORUM"),
      "consistency level of reads and writes");
}

}  // namespace

cql::Consistency parse_consistency(const std::string& name, const std::string& option) {
  static const std::pair<const char*, cql::Consistency> kLevels[] = {
      {"ANY", cql::Consistency::kAny},
      {"ONE", cql::Consistency::kOne},
      {"TWO", cql::Consistency::kTwo},
      {"THREE", cql::Consistency::kThree},
      {"QUORUM", cql::Consistency::kQuorum},
      {"ALL", cql::Consistency::kAll},
      {"LOCAL_QUORUM", cql::Consistency::kLocalQuorum},
      {"EACH_QUORUM", cql::Consistency::kEachQuorum},
      {"LOCAL_ONE", cql::Consistency::kLocalOne}};
  for (const auto& [n, c] : kLevels)
    if (name == n) return c;
  throw OptionsError("--" + option + ": unknown consistency level '" + name + "'");
}

namespace {

// The option table: every option, bound to `o`'s fields, `tables` (the -t values as given) and
// `progress` (the --progress word).
po::options_description option_table(Options& o, std::vector<std::string>& tables,
                                     std::string& progress) {
  po::options_description clusters("clusters");
  add_cluster(clusters, "origin", o.origin);
  add_cluster(clusters, "target", o.target);
  clusters.add_options()("compression", po::value(&o.compression)->default_value("none"),
                         "none, lz4 or snappy (v4 only)")(
      "connect-timeout-ms", po::value(&o.connect_timeout_ms)->default_value(10000),
      "TCP + TLS + handshake deadline")("request-timeout-ms",
                                        po::value(&o.request_timeout_ms)->default_value(12000),
                                        "deadline of one request attempt")(
      "retries", po::value(&o.retries)->default_value(9),
      "attempts after the first on timeouts, unavailable, overloaded (exponential backoff "
      "0.1 s to 5 s)");
  po::options_description job("job");
  job.add_options()("keyspace,k", po::value(&o.keyspace), "keyspace")(
      "table,t", po::value(&tables)->composing(),
      "table (repeatable, or comma-separated; default: every table of the keyspace)")(
      "threads", po::value(&o.threads)->default_value(1),
      "worker threads, each with its own connections")(
      "splits", po::value(&o.splits)->default_value(0),
      "token ranges to cut the ring into (at least; 0: 4 per node token, at least 256)")(
      "parallel", po::value(&o.parallel)->default_value(4),
      "token ranges scanned at once by each thread")("concurrency",
                                                     po::value(&o.concurrency)->default_value(256),
                                                     "write requests in flight per thread")(
      "page-size", po::value(&o.page_size)->default_value(1000), "rows per page of a scan")(
      "rate-rows", po::value(&o.rate_rows)->default_value(0),
      "rows/s at most, over all threads (0: no limit)")(
      "rate-mb", po::value(&o.rate_mb)->default_value(0),
      "MB/s of cell values at most, over all threads (0: no limit)")(
      "checkpoint", po::value(&o.checkpoint),
      "backfill: progress file (default zdm-data-<keyspace>.checkpoint)")(
      "restart", po::bool_switch(), "backfill: ignore the checkpoint's progress and start over")(
      "metrics", po::value(&o.metrics), "ADDRESS:PORT to serve Prometheus /metrics on")(
      "progress", po::value(&progress)->default_value("auto"),
      "auto (a bar on a terminal, lines otherwise), bar, lines or none")(
      "progress-interval", po::value(&o.progress_interval_s)->default_value(10),
      "seconds between progress lines")("log-level", po::value(&o.log_level)->default_value("info"),
                                        "trace, debug, info, warn, error");
  po::options_description validate("validate");
  validate.add_options()("sample", po::value(&o.sample_percent)->default_value(100),
                         "PERCENT of the token ranges to compare (chosen at random)")(
      "seed", po::value(&o.seed)->default_value(1), "random seed of --sample")(
      "writetime", po::bool_switch(&o.writetime), "also compare cells' writetimes")(
      "repair", po::bool_switch(&o.repair),
      "write origin's version of missing and differing rows to target (origin's writetimes: a "
      "newer target cell is kept)")(
      "delete-extra", po::bool_switch(&o.delete_extra),
      "with --repair: delete rows found only on target (a tombstone at their newest write "
      "time)")("json", po::bool_switch(&o.json), "print the report as JSON")(
      "max-examples", po::value(&o.max_examples)->default_value(20),
      "differences listed per table")(
      "keys-from-journal", po::value(&o.keys_from_journal)->composing(),
      "journal DIR (repeatable): check only the partitions its writes touched, every write of "
      "every segment (settled or not), origin against target; no keyspace scan, no repair");
  po::options_description replay("replay, journal-status");
  replay.add_options()("journal", po::value(&o.journals)->composing(),
                       "journal directory (proxy_journal_dir; repeatable)")(
      "rate", po::value(&o.rate_writes)->default_value(2000),
      "replay: writes/s at most (0: no limit)")(
      "dry-run", po::bool_switch(&o.dry_run),
      "replay: count the writes to replay by table, apply nothing (no cluster needed)")(
      "accept-torn", po::bool_switch(&o.accept_torn),
      "replay: a torn tail does not fail the run (exit 0) and its segment may be deleted")(
      "delete-all", po::bool_switch(&o.delete_all),
      "replay: also delete each writer's newest segment once applied (only with the proxy "
      "stopped)")("consistency", po::value(&o.replay_consistency),
                  "replay: consistency level of every write (default: each request's own)")(
      "validate", po::bool_switch(&o.replay_validate),
      "replay: after each segment, read the partitions its writes touched from origin (--origin) "
      "and target and compare them; a segment is deleted only when all are equal")(
      "check-max-rows", po::value(&o.check_max_rows)->default_value(10000),
      "replay --validate, validate --keys-from-journal: a partition with more rows is not "
      "compared (counted unverifiable)");
  po::options_description general("general");
  general.add_options()("help,h", "show this help")("version", "print the version");
  po::options_description all;
  all.add(clusters).add(job).add(validate).add(replay).add(general);
  return all;
}

std::string help_text(const po::options_description& all) {
  std::ostringstream out;
  out << kUsage << "\n" << all;
  return out.str();
}

// Parses the arguments after the command. Throws OptionsError.
po::variables_map parse_args(const po::options_description& all,
                             const std::vector<std::string>& args) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw OptionsError(e.what());
  }
  return vm;
}

// Completes and checks --origin's or --target's options (`side`): contact points, hostname
// check, password from $ZDM_DATA_ORIGIN_PASSWORD / $ZDM_DATA_TARGET_PASSWORD when not given,
// protocol version, TLS files, consistency. Throws OptionsError.
void check_cluster(const po::variables_map& vm, const std::string& s, ClusterOptions* c,
                   const std::function<const char*(const char*)>& getenv) {
  if (!vm.count(s)) throw OptionsError("--" + s + " is required (contact points of " + s + ")");
  c->contact_points = split_list(vm[s].as<std::vector<std::string>>());
  if (c->contact_points.empty()) throw OptionsError("--" + s + " lists no contact point");
  c->tls_hostname_check = !vm[s + "-tls-no-hostname-check"].as<bool>();
  if (c->password.empty() && getenv) {
    const char* env =
        getenv(s == "origin" ? "ZDM_DATA_ORIGIN_PASSWORD" : "ZDM_DATA_TARGET_PASSWORD");
    if (env) c->password = env;
  }
  if (c->max_protocol_version != 4 && c->max_protocol_version != 5)
    throw OptionsError("--" + s + "-protocol-version must be 4 or 5");
  if ((!c->tls_cert.empty() || !c->tls_key.empty()) && c->tls_ca.empty())
    throw OptionsError("--" + s + "-tls-cert/--" + s + "-tls-key need --" + s + "-tls-ca");
  if (c->tls_cert.empty() != c->tls_key.empty())
    throw OptionsError("--" + s + "-tls-cert and --" + s + "-tls-key go together");
  parse_consistency(c->consistency, s + "-consistency");
}

ProgressMode parse_progress(const std::string& progress) {
  if (progress == "auto") return ProgressMode::kAuto;
  if (progress == "bar") return ProgressMode::kBar;
  if (progress == "lines") return ProgressMode::kLines;
  if (progress == "none") return ProgressMode::kNone;
  throw OptionsError("--progress must be auto, bar, lines or none");
}

// Checks the compression and the numbers' ranges. Throws OptionsError.
void check_values(const Options& o) {
  if (o.compression != "none" && o.compression != "lz4" && o.compression != "snappy")
    throw OptionsError("--compression must be none, lz4 or snappy");
  auto positive = [](int v, const char* name) {
    if (v < 1) throw OptionsError(std::string("--") + name + " must be at least 1");
  };
  positive(o.threads, "threads");
  positive(o.parallel, "parallel");
  positive(o.concurrency, "concurrency");
  positive(o.page_size, "page-size");
  positive(o.request_timeout_ms, "request-timeout-ms");
  positive(o.connect_timeout_ms, "connect-timeout-ms");
  positive(o.progress_interval_s, "progress-interval");
  positive(o.check_max_rows, "check-max-rows");
  if (o.splits < 0) throw OptionsError("--splits must not be negative");
  if (o.retries < 0) throw OptionsError("--retries must not be negative");
  if (o.rate_rows < 0 || o.rate_mb < 0)
    throw OptionsError("--rate-rows/--rate-mb must not be negative");
  if (o.rate_writes < 0) throw OptionsError("--rate must not be negative");
  if (o.sample_percent <= 0 || o.sample_percent > 100)
    throw OptionsError("--sample must be a percentage in (0, 100]");
}

const char* command_name(Command c) {
  switch (c) {
    case Command::kBackfill:
      return "backfill";
    case Command::kValidate:
      return "validate";
    case Command::kReplay:
      return "replay";
    case Command::kJournalStatus:
      return "journal-status";
  }
  return "?";
}

// Refuses an option of another command (given on the command line, a switch only when on).
// Throws OptionsError.
void check_command(const po::variables_map& vm, Options& o) {
  using C = Command;
  static const std::vector<std::pair<const char*, std::vector<Command>>> kOwners = {
      {"sample", {C::kValidate}},
      {"writetime", {C::kValidate}},
      {"repair", {C::kValidate}},
      {"delete-extra", {C::kValidate}},
      {"json", {C::kValidate, C::kJournalStatus}},
      {"checkpoint", {C::kBackfill}},
      {"restart", {C::kBackfill}},
      {"journal", {C::kReplay, C::kJournalStatus}},
      {"rate", {C::kReplay}},
      {"dry-run", {C::kReplay}},
      {"accept-torn", {C::kReplay}},
      {"delete-all", {C::kReplay}},
      {"consistency", {C::kReplay}},
      {"validate", {C::kReplay}},
      {"keys-from-journal", {C::kValidate}},
      {"keyspace", {C::kBackfill, C::kValidate}},
      {"table", {C::kBackfill, C::kValidate}},
  };
  for (const auto& [v, owners] : kOwners) {
    if (std::find(owners.begin(), owners.end(), o.command) != owners.end()) continue;
    bool given = vm.count(v) && !vm[v].defaulted();
    if (given && vm[v].value().type() == typeid(bool)) given = vm[v].as<bool>();
    if (!given) continue;
    std::string names;
    for (std::size_t i = 0; i < owners.size(); ++i)
      names += std::string(i == 0                   ? ""
                           : i + 1 == owners.size() ? " or "
                                                    : ", ") +
               command_name(owners[i]);
    throw OptionsError(std::string("--") + v + " is an option of " + names + ", not " +
                       command_name(o.command));
  }
  if (o.command == C::kValidate && o.delete_extra && !o.repair)
    throw OptionsError("--delete-extra needs --repair");
  if (!o.keys_from_journal.empty() && (o.repair || o.writetime || !o.keyspace.empty()))
    throw OptionsError(
        "--keys-from-journal checks the journal's partitions only: no --repair, --writetime or "
        "-k (a keyspace scan does)");
}

}  // namespace

std::string usage() {
  return kUsage;
}

ParseResult parse_options(int argc, const char* const* argv,
                          const std::function<const char*(const char*)>& getenv) {
  ParseResult result;
  Options o;
  std::vector<std::string> tables;
  std::string progress = "auto";
  const po::options_description all = option_table(o, tables, progress);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    result.text = help_text(all);
    result.exit_code = args.empty() ? 2 : 0;
    return result;
  }
  if (args[0] == "--version") {
    result.text = std::string("zdm-data ") + ZDM_VERSION + "\n";
    return result;
  }
  if (args[0] == "backfill") {
    o.command = Command::kBackfill;
  } else if (args[0] == "validate") {
    o.command = Command::kValidate;
  } else if (args[0] == "replay") {
    o.command = Command::kReplay;
  } else if (args[0] == "journal-status") {
    o.command = Command::kJournalStatus;
  } else {
    throw OptionsError("unknown command '" + args[0] +
                       "' (backfill, validate, replay or journal-status)");
  }
  const po::variables_map vm =
      parse_args(all, std::vector<std::string>(args.begin() + 1, args.end()));
  if (vm.count("help")) {
    result.text = help_text(all);
    return result;
  }
  const bool journal = o.command == Command::kReplay || o.command == Command::kJournalStatus;
  check_command(vm, o);
  if (!journal || (o.command == Command::kReplay && o.replay_validate && !o.dry_run))
    check_cluster(vm, "origin", &o.origin, getenv);
  if (o.command == Command::kReplay && !o.dry_run) check_cluster(vm, "target", &o.target, getenv);
  if (!journal) check_cluster(vm, "target", &o.target, getenv);
  if (!journal && o.keyspace.empty() && o.keys_from_journal.empty())
    throw OptionsError("-k/--keyspace is required");
  if (journal && o.journals.empty())
    throw OptionsError("--journal is required (a journal directory)");
  if (!o.replay_consistency.empty()) parse_consistency(o.replay_consistency, "consistency");
  o.tables = split_list(tables);
  o.resume = !vm["restart"].as<bool>();
  o.progress = parse_progress(progress);
  check_values(o);
  if (o.command == Command::kBackfill && o.checkpoint.empty())
    o.checkpoint = "zdm-data-" + o.keyspace + ".checkpoint";
  result.options = std::move(o);
  return result;
}

ClusterConfig cluster_config(const Options& o, bool origin) {
  const ClusterOptions& c = origin ? o.origin : o.target;
  const std::string side = origin ? "origin" : "target";
  ClusterConfig cfg;
  cfg.label = side;
  cfg.contact_points = c.contact_points;
  cfg.port = c.port;
  cfg.connect.credentials = net::Credentials{c.username, c.password};
  cfg.connect.compression = o.compression == "lz4"      ? cql::Compression::kLz4
                            : o.compression == "snappy" ? cql::Compression::kSnappy
                                                        : cql::Compression::kNone;
  cfg.connect.hop.connect_timeout = std::chrono::milliseconds(o.connect_timeout_ms);
  cfg.connect.handshake_timeout = std::chrono::milliseconds(o.connect_timeout_ms);
  cfg.connect.hop.verify_hostname = c.tls_hostname_check;
  if (!c.tls_ca.empty()) {
    net::TlsFiles files{c.tls_ca,
                        c.tls_cert,
                        c.tls_key,
                        "--" + side + "-tls-ca",
                        "--" + side + "-tls-cert",
                        "--" + side + "-tls-key"};
    try {
      cfg.connect.hop.tls = net::make_client_context(files);
    } catch (const net::TlsError& e) {
      throw OptionsError(e.what());
    }
  }
  cfg.max_version = static_cast<uint8_t>(c.max_protocol_version);
  cfg.request_timeout = std::chrono::milliseconds(o.request_timeout_ms);
  auto cl = parse_consistency(c.consistency, side + "-consistency");
  cfg.read_consistency = cl;
  cfg.write_consistency = cl;
  cfg.max_attempts = o.retries + 1;
  return cfg;
}

}  // namespace zdm::data
