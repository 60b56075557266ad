// zdm-data: the data phase of a ZDM migration (ZDM's phase 2, "migrate and validate data") without
// DSBulk or Spark: `backfill` copies origin's rows to target keeping write times and TTLs,
// `validate` compares both clusters and repairs target; `replay` puts the proxy's write journal
// back on target, `journal-status` says what it holds.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "data/commands.h"
#include "data/job.h"

int main(int argc, char** argv) {
  using namespace zdm::data;
  ParseResult parsed;
  try {
    parsed = parse_options(argc, argv,
                           [](const char* name) -> const char* { return std::getenv(name); });
  } catch (const OptionsError& e) {
    std::fprintf(stderr, "zdm-data: %s (zdm-data --help lists the options)\n", e.what());
    return 2;
  }
  if (!parsed.options) {
    std::fputs(parsed.text.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  const Options& o = *parsed.options;
  auto logger = spdlog::stderr_logger_mt("zdm-data");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  spdlog::set_level(spdlog::level::from_str(o.log_level));
  try {
    switch (o.command) {
      case Command::kBackfill:
        return run_backfill(o);
      case Command::kValidate:
        return run_validate(o);
      case Command::kReplay:
        return run_replay(o);
      case Command::kJournalStatus:
        return run_journal_status(o);
    }
    return 2;
  } catch (const JobError& e) {
    std::fprintf(stderr, "zdm-data: %s\n", e.what());
    return e.code;
  }
}
