// The write journal: writes target did not get (or might not have got), kept on the proxy host
// so zdm-data can put them back (`zdm-data replay`). Written by zdm-proxy, read by zdm-data.
//
// Layout: a directory (proxy_journal_dir) of segment files, one writer per proxy worker thread:
//   <dir>/<run>-w<worker>-<index>.zdmj
// <run> is the proxy's start time in ms since the epoch (13 digits), <index> a 6-digit counter:
// names sort in write order per worker. A segment starts with the 8 bytes "ZDMJRNL1", then
// records, each:
//   u32 payload length (little endian) | u32 CRC-32 of the payload (zlib's crc32) | payload
// payload = u8 type, then by type:
//   kWrite   (1): u64 seq | u8 reason | u8 protocol version | u8 opcode (QUERY 0x07 or
//                 BATCH 0x0D) | i64 journaled at (ms since the epoch) | u16+bytes keyspace (the
//                 connection's, for unqualified table names) | u16+bytes table ("ks.table", for
//                 reports) | u32+bytes request body
//   kSettled (2): u64 seq | u8 Settlement
// seq counts from 1 per writer (per <run>-w<worker>), across its segments.
//
// The request body is replayable as it is: a QUERY or BATCH body of that protocol version
// (native_protocol_v4.spec §4.1.4, §4.1.7; v5 §4.1.4, §4.1.7), uncompressed, every prepared
// statement replaced by its query string with the same bound values, and a default timestamp
// set (the proxy sets one on every write it may journal), so applying it twice, or after a newer
// write, changes nothing: last write wins by timestamp.
//
// A kWrite record is appended before the write goes to target (or instead of it while target is
// disabled or isolated), and a kSettled record when target acknowledged it (or origin refused
// it, so the client was told it failed). Replay applies every kWrite without a kSettled, and
// records how far it got in a side file per segment it keeps ("<segment>.replayed", Mark below):
// what is still to replay is what neither a kSettled nor that mark covers. A torn tail (a crash
// mid-append) is a record whose length runs past the end of the file or whose CRC does not
// match: readers stop there and report it; everything before it is intact.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace zdm::journal {

inline constexpr std::string_view kMagic = "ZDMJRNL1";
inline constexpr std::string_view kSuffix = ".zdmj";
inline constexpr std::size_t kRecordHeader = 8;  // length + CRC
/// The largest payload a reader accepts (a frame's body is at most 256 MiB).
inline constexpr uint32_t kMaxPayload = 256u * 1024 * 1024 + 4096;

enum class RecordType : uint8_t { kWrite = 1, kSettled = 2 };

/// Why a write was journaled (the `reason` label of zdm_proxy_target_divergence_writes_total).
enum class Reason : uint8_t {
  kInFlight = 0,           // journaled before going to target (isolate mode); settled on its answer
  kTargetDisabled = 1,     // POST /api/v1/target/disable: not sent to target
  kTargetError = 2,        // target answered with an ERROR
  kTargetTimeout = 3,      // target did not answer within target_write_timeout_ms
  kTargetUnreachable = 4,  // no connection to target
  kCircuitOpen = 5,        // the circuit breaker held target's writes back
};
std::string_view reason_name(Reason r);

enum class Settlement : uint8_t {
  kTargetApplied = 1,  // target acknowledged the write: nothing to replay
  kOriginFailed = 2,   // origin refused it: the client was told it failed, target must not have it
};

/// One journaled write.
struct Write {
  uint64_t seq = 0;
  Reason reason = Reason::kInFlight;
  uint8_t version = 4;
  uint8_t opcode = 0x07;
  int64_t journaled_at_ms = 0;
  std::string keyspace;
  std::string table;
  std::string body;  // bytes of the request body
};

/// A write to append whose body is given in consecutive parts (the proxy passes views into the
/// request it forwards: nothing is copied before the record is encoded).
struct WriteParts {
  Reason reason = Reason::kInFlight;
  uint8_t version = 4;
  uint8_t opcode = 0x07;
  int64_t journaled_at_ms = 0;
  std::string_view keyspace, table;
  std::array<std::string_view, 3> body{};  // concatenated in order; empty parts allowed
};

/// Encodes `w` as a whole record (header included), appended to `out`.
void encode_write(const Write& w, std::string& out);
/// The same for write `seq` given in parts.
void encode_write(uint64_t seq, const WriteParts& w, std::string& out);
/// Encodes a kSettled record for `seq`, appended to `out`.
void encode_settled(uint64_t seq, Settlement how, std::string& out);

/// Bytes shared by every writer of one process: live segment bytes against
/// proxy_journal_max_bytes.
struct Budget {
  explicit Budget(uint64_t max_bytes) : max_bytes(max_bytes) {}
  const uint64_t max_bytes;
  std::atomic<uint64_t> bytes{0};    // this process's writers: live segments and buffers
  std::atomic<uint64_t> earlier{0};  // segments of earlier runs still on disk
  uint64_t used() const { return bytes.load() + earlier.load(); }
};

/// The journal of one worker thread. Not thread-safe: one per worker. Appends go to a buffer;
/// flush() writes the buffer to the segment (one write(2)), sync() also fdatasync(2)s it. A
/// segment is closed when it reaches `segment_bytes` and deleted once every write in it is
/// settled (nothing of it is left to replay). I/O errors are thrown as std::system_error
/// naming the file.
class Writer {
 public:
  /// `dir` must exist. `run`: the process's start (ms since the epoch); `worker`: its index.
  Writer(std::filesystem::path dir, int64_t run, int worker, std::shared_ptr<Budget> budget,
         uint64_t segment_bytes);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  /// Appends `w` (its seq is set here and returned); nullopt when the budget has no room for
  /// it (the journal is full: nothing appended).
  std::optional<uint64_t> append(Write& w);
  /// The same for a write given in parts (the proxy's path: no copy of the body before this).
  std::optional<uint64_t> append(const WriteParts& w);
  /// Appends the settlement of `seq`; frees its segment once nothing in it awaits.
  void settle(uint64_t seq, Settlement how);
  /// Writes what was appended to the file (no fsync).
  void flush();
  /// flush() and fdatasync(2).
  void sync();
  /// Writes appended and not yet settled.
  uint64_t open_writes() const { return open_total_; }
  /// The descriptor of the segment appended to (-1 before the first append): another thread
  /// may fdatasync(2) a dup(2) of it.
  int fd() const { return fd_; }
  /// The segment appended to: 1 for the first, one more at each new segment (0 before any).
  int segment_index() const { return index_; }
  /// Bytes this writer holds on disk (its live segments) plus its buffer.
  uint64_t bytes() const;
  /// Forgets closed segments that are gone from disk (a replay deleted them): their writes no
  /// longer count as open, their bytes leave the budget.
  void reclaim_deleted();

 private:
  struct Segment {
    std::filesystem::path path;
    uint64_t first_seq = 0;
    uint64_t bytes = 0;
    uint64_t open = 0;  // writes not settled
  };
  void open_segment();
  void drop_settled_segments();

  std::filesystem::path dir_;
  int64_t run_;
  int worker_;
  std::shared_ptr<Budget> budget_;
  uint64_t segment_bytes_;
  int fd_ = -1;
  int index_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t open_total_ = 0;
  std::string buffer_;
  std::vector<Segment> segments_;  // oldest first; the last is the one appended to
};

/// What reading one segment found.
struct SegmentScan {
  std::vector<Write> writes;        // kWrite records, in file order
  std::vector<uint64_t> settled;    // seqs of kSettled records
  uint64_t valid_bytes = 0;         // up to the end of the last intact record
  std::optional<std::string> torn;  // what is wrong past valid_bytes, if anything
};

/// Reads a segment. `from`: an offset where a record starts (a checkpoint), 0 for the whole
/// file. Throws std::runtime_error naming the file when it is not a journal segment or cannot
/// be read; a torn or corrupt tail is reported in `torn`, not thrown.
SegmentScan read_segment(const std::filesystem::path& file, uint64_t from = 0);

/// Segment files in `dir`, sorted by name (write order per writer).
std::vector<std::filesystem::path> list_segments(const std::filesystem::path& dir);

/// The writer a segment belongs to ("<run>-w<worker>"): writes are settled within one writer.
std::string writer_of(const std::filesystem::path& segment);

// ---------------------------------------------------------------------------------------------
// Replay checkpoints. `zdm-data replay` keeps, next to each segment it applied and did not
// delete, a side file "<segment>.replayed" saying how far it got; the proxy reads them to tell
// what is still to replay (summarize, prune).

inline constexpr std::string_view kMarkSuffix = ".replayed";

/// Where replay stopped in one segment, kept in "<segment>.replayed" (one line,
/// "zdm-data replayed 1 <offset> <last seq>\n"):
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
std::filesystem::path mark_path(const std::filesystem::path& segment);
/// The side file's text (with its newline).
std::string mark_text(const Mark& m);
/// Parses a side file's text; `path` names it in errors. Throws std::runtime_error
/// "<path> is not a zdm-data replay checkpoint (expected '...')".
Mark parse_mark(std::string_view text, const std::string& path);
/// The mark of `segment`: a zero Mark when it has none. Throws std::runtime_error naming the
/// side file when it cannot be read or is malformed.
Mark read_mark(const std::filesystem::path& segment);
/// The offset to read `segment` from: `m.offset`, or 0 when the file is shorter than that (it
/// is not the file the mark was written for; `last_seq` still keeps applied writes out) or
/// cannot be sized.
uint64_t start_offset(const std::filesystem::path& segment, const Mark& m);
/// Writes the mark of `segment` atomically: "<side file>.tmp" written and fsync(2)ed, then
/// rename(2)d over the side file. Throws std::runtime_error naming the file and the errno text.
void write_mark(const std::filesystem::path& segment, const Mark& m);
/// Deletes `segment` and its side file (when it has one). Throws std::runtime_error naming the
/// segment when it cannot be deleted (a side file left behind is not an error).
void remove_segment(const std::filesystem::path& segment);
/// Deletes the side files in `dir` whose segment is gone (the proxy deleted it once every write
/// in it was settled). Returns how many; 0 when `dir` cannot be listed.
int remove_orphan_marks(const std::filesystem::path& dir);

// ---------------------------------------------------------------------------------------------
// What is left to replay: every kWrite without a kSettled of its writer, past its segment's
// mark (neither before `offset` nor at or below `last_seq`).

/// One writer's segments ("<run>-w<worker>"), oldest first.
struct WriterSegments {
  std::string writer;
  std::vector<std::filesystem::path> segments;
  /// The writer belongs to an earlier run of the proxy than the newest run in its directory:
  /// that process is gone, nothing appends to its newest segment any more.
  bool earlier_run = false;
};
/// The writers of `dir`, in name order; none when `dir` cannot be listed.
std::vector<WriterSegments> writers_of(const std::filesystem::path& dir);

/// How the writes of one segment, read from its mark, sort out.
struct Selection {
  std::vector<std::size_t> apply;  // to replay: indexes into scan.writes, in file order
  uint64_t settled = 0;            // a kSettled record of the writer names them
  uint64_t replayed = 0;           // applied by an earlier replay (seq <= mark.last_seq)
};
/// Sorts out the writes of `scan` (read from `mark.offset`): settled when `settled` (the
/// writer's settled seqs) has their seq, else replayed when at or below `mark.last_seq`, else
/// to apply.
Selection select(const SegmentScan& scan, const Mark& mark, const std::set<uint64_t>& settled);

/// One segment of a writer as replay sees it.
struct MarkedSegment {
  std::filesystem::path path;
  uint64_t bytes = 0;   // the file's size (0 when it cannot be sized)
  Mark mark;            // its side file's; zero when none
  SegmentScan scan;     // its records from start_offset(path, mark)
  Selection selection;  // scan.writes sorted out against every settled seq of the writer
  /// With BadFiles::kTolerate, why its side file could not be used (then `mark` is zero: every
  /// write of the segment not settled counts as to replay).
  std::optional<std::string> mark_error;
};

/// What survey_writer does with a segment it cannot read or a side file it cannot parse.
enum class BadFiles {
  kThrow,     // std::runtime_error naming the file
  kTolerate,  // a segment that cannot be read: an empty scan, `scan.torn` says why; a side
              // file: MarkedSegment::mark_error; a segment gone meanwhile is left out
};

/// Reads the segments of `w` from their marks, twice: first every settled seq of the writer
/// past the marks (a kSettled follows its kWrite, so that part of the journal holds every
/// settlement of the writes in it), then each segment again, passed to `each` in write order
/// with its writes sorted out. One segment in memory at a time. Returns the settled seqs.
std::set<uint64_t> survey_writer(const WriterSegments& w,
                                 const std::function<void(const MarkedSegment&)>& each,
                                 BadFiles bad = BadFiles::kThrow);

/// Journal state of a directory: writes still to replay (kWrite without kSettled, across each
/// writer's segments, not covered by the segment's replay mark) and bytes on disk. Reads every
/// segment from its mark, twice (survey_writer). Never throws: a segment that cannot be read
/// counts as torn, a side file that cannot be parsed is ignored (its writes count as to
/// replay).
struct Summary {
  uint64_t segments = 0;
  uint64_t bytes = 0;
  uint64_t unsettled = 0;  // writes to replay
  uint64_t torn = 0;       // segments with a torn tail, or that cannot be read
};
Summary summarize(const std::filesystem::path& dir);

/// Deletes the segments (and their side files) of writers other than the running ones with
/// nothing left to replay and no torn segment (an earlier run of the proxy whose writes were
/// all settled or replayed), and side files whose segment is gone. Call it before this
/// process's writers start. Returns the summary of what is left.
Summary prune(const std::filesystem::path& dir);

}  // namespace zdm::journal
