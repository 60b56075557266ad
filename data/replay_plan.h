// What `zdm-data replay` and `zdm-data journal-status` decide about a write journal without the
// network (the format is common/journal/journal.h): where an earlier replay stopped in each
// segment (its checkpoint side file), which writes of a segment to apply, which segments may be
// deleted once applied, what a journal directory holds (the survey both commands print), and the
// two details of a request body replay touches (the consistency level, the keyspace's quoting).
// Local files only, so unit-tested.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/journal/journal.h"

namespace zdm::data::replay {

namespace fs = std::filesystem;

/// A journal or checkpoint that cannot be used: what() is one line naming the file.
class ReplayError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where replay stopped in one segment, kept next to it in "<segment>.replayed" (one line,
/// "zdm-data replayed 1 <offset> <last seq>"):
/// - offset: bytes from the start of the segment up to which every record was handled (a
///   record boundary; the next run reads from there; 0: from the start);
/// - last_seq: the highest seq applied in the segment past `offset` (writes with a seq at or
///   below it are not applied again; seqs grow in file order within a writer).
struct Mark {
  uint64_t offset = 0;
  uint64_t last_seq = 0;
  bool operator==(const Mark&) const = default;
};

/// "<segment>.replayed".
fs::path mark_path(const fs::path& segment);
/// The side file's text (with its newline).
std::string mark_text(const Mark& m);
/// Parses a side file's text; `path` names it in errors. Throws ReplayError.
Mark parse_mark(std::string_view text, const std::string& path);
/// The mark of `segment`: a zero Mark when it has none. Throws ReplayError on an unreadable or
/// malformed side file.
Mark read_mark(const fs::path& segment);
/// The offset to read `segment` from: its mark's, or 0 when the file is shorter than that (it
/// is not the file the mark was written for; `last_seq` still keeps applied writes out).
uint64_t start_offset(const fs::path& segment, const Mark& m);
/// Writes the mark of `segment` atomically: "<side file>.tmp" written and fsync(2)ed, then
/// rename(2)d over the side file. Throws ReplayError naming the file.
void write_mark(const fs::path& segment, const Mark& m);
/// Deletes `segment` and its side file. Throws ReplayError when the segment cannot be deleted.
void remove_segment(const fs::path& segment);
/// Deletes the side files in `dir` whose segment is gone (the proxy deleted it once every write
/// in it was settled). Returns how many.
int remove_orphan_marks(const fs::path& dir);

/// One writer's segments ("<run>-w<worker>", journal.h), oldest first.
struct WriterSegments {
  std::string writer;
  fs::path dir;
  std::vector<fs::path> segments;
  /// The writer belongs to an earlier run of the proxy than the newest run in its directory:
  /// that process is gone, nothing appends to its newest segment any more.
  bool earlier_run = false;
};
/// The writers of `dir` in name order. Throws ReplayError when `dir` is not a directory.
std::vector<WriterSegments> writers_of(const fs::path& dir);

/// What to do with the writes of one segment read from its mark.
struct Selection {
  std::vector<std::size_t> apply;  // indexes into scan.writes, in file order
  uint64_t settled = 0;            // skipped: a kSettled record names them
  uint64_t replayed = 0;           // skipped: applied by an earlier run (seq <= mark.last_seq)
};
/// The writes of `scan` (read from `mark.offset`) to apply: neither in `settled` (every
/// settled seq of the writer) nor at or below `mark.last_seq`.
Selection select(const journal::SegmentScan& scan, const Mark& mark,
                 const std::set<uint64_t>& settled);

/// Whether a segment whose writes are all applied may be deleted: always when it is not the
/// newest segment of its writer (the proxy appends to the newest only, and never rewrites an
/// older one); the newest only when its writer belongs to an earlier run (`earlier_run`) or
/// `delete_all` says the proxy is stopped. Never with a torn tail unless `torn_accepted`.
bool deletable(bool newest, bool earlier_run, bool delete_all, bool torn, bool torn_accepted);

/// A torn tail found: the segment and what is wrong past its last intact record.
struct Torn {
  std::string file, what;
};

/// What the journal directories hold, from the segments and their marks.
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
  std::vector<WriterSegments> writer_list;
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

/// Byte offset of the consistency [short] in a QUERY (0x07) or BATCH (0x0D) request body
/// (native_protocol_v4.spec §4.1.4, §4.1.7; the same place in v5): after the query [long
/// string] of a QUERY, after the children of a BATCH. nullopt when the body ends early.
std::optional<std::size_t> consistency_offset(uint8_t opcode, std::string_view body);
/// `body` with its consistency [short] set to `consistency`. Throws ReplayError when the body
/// ends before it.
std::string with_consistency(uint8_t opcode, std::string body, uint16_t consistency);
/// A CQL quoted identifier: "ks" → "\"ks\"", a '"' doubled (CQL's quoted names).
std::string quote_identifier(std::string_view name);

}  // namespace zdm::data::replay
