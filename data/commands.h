// The commands of zdm-data. Each returns the process exit code (options.cpp's usage lists
// them) and prints its summary or report on stdout, progress and problems on stderr.
#pragma once

#include "data/options.h"

namespace zdm::data {

int run_backfill(const Options& o);
int run_validate(const Options& o);
int run_replay(const Options& o);
int run_journal_status(const Options& o);

}  // namespace zdm::data
