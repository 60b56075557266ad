// What `zdm-data replay` and `zdm-data journal-status` decide about a write journal without the
// network (the format, the checkpoint side files and which writes are still to replay are
// common/journal/journal.h's): which segments may be deleted once applied, what the journal
// directories hold (the survey both commands print), and the two details of a request body
// replay touches (the consistency level, the keyspace's quoting). Local files only, so
// unit-tested.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/journal/journal.h"

namespace zdm::data::replay {

namespace fs = std::filesystem;

/// A journal or checkpoint that cannot be used: what() is one line naming the file.
class ReplayError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Runs `f` (calls into the journal lib: segments, marks), its std::runtime_error rethrown as a
/// ReplayError with the same message: a journal or checkpoint that cannot be used ends zdm-data
/// with exit code 2.
template <class F>
decltype(auto) journal_call(F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const ReplayError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw ReplayError(e.what());
  }
}

/// The writers of `dir` (journal::writers_of). Throws ReplayError when `dir` is not a
/// directory.
std::vector<journal::WriterSegments> writers_of(const fs::path& dir);

/// Whether a segment whose writes are all applied may be deleted: always when it is not the
/// newest segment of its writer (the proxy appends to the newest only, and never rewrites an
/// older one); the newest only when its writer belongs to an earlier run (`earlier_run`) or
/// `delete_all` says the proxy is stopped. Never with a torn tail unless `torn_accepted`.
bool deletable(bool newest, bool earlier_run, bool delete_all, bool torn, bool torn_accepted);

/// A torn tail found: the segment and what is wrong past its last intact record.
struct Torn {
  std::string file, what;
};

/// What the journal directories hold, from the segments and their marks (journal::survey_writer).
struct Survey {
  uint64_t segments = 0, bytes = 0, writers = 0;
  uint64_t writes = 0;    // kWrite records past the marks
  uint64_t pending = 0;   // writes to replay
  uint64_t settled = 0;   // writes settled (nothing to replay)
  uint64_t replayed = 0;  // writes applied by an earlier replay, past the marks
  std::map<std::string, uint64_t> pending_by_table;  // "ks.table" → writes to replay
  std::map<int, uint64_t> pending_by_version;        // protocol version → writes to replay
  std::vector<Torn> torn;
  /// Per writer: the settled seqs (the replay's first pass), in writers_of's order.
  std::vector<journal::WriterSegments> writer_list;
  std::vector<std::set<uint64_t>> settled_seqs;
};
/// Reads every segment of `dirs` from its mark. Throws ReplayError on a directory that cannot
/// be listed, a file that is not a segment or a bad side file.
Survey survey(const std::vector<std::string>& dirs);
/// The survey as JSON (journal-status --json): {"journals": [...], "segments", "bytes",
/// "writers", "writes", "pending", "settled", "replayed", "tables": {"ks.t": n},
/// "versions": {"4": n}, "torn": [{"file", "what"}]}.
std::string survey_json(const Survey& s, const std::vector<std::string>& dirs);
/// The survey as text for people (journal-status, replay --dry-run).
std::string survey_text(const Survey& s, const std::vector<std::string>& dirs);

/// `body` (a QUERY 0x07 or BATCH 0x0D request body of protocol `version`, no custom payload)
/// with its consistency [short] set to `consistency` (cql::consistency_offset finds it). Throws
/// ReplayError when the body ends before it or `opcode` has none.
std::string with_consistency(uint8_t version, uint8_t opcode, std::string body,
                             uint16_t consistency);
/// A CQL quoted identifier: "ks" → "\"ks\"", a '"' doubled (CQL's quoted names).
std::string quote_identifier(std::string_view name);

}  // namespace zdm::data::replay
