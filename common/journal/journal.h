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
// it, so the client was told it failed). Replay applies every kWrite without a kSettled. A torn
// tail (a crash mid-append) is a record whose length runs past the end of the file or whose CRC
// does not match: readers stop there and report it; everything before it is intact.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
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

/// Encodes `w` as a whole record (header included), appended to `out`.
void encode_write(const Write& w, std::string& out);
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
  /// Appends the settlement of `seq`; frees its segment once nothing in it awaits.
  void settle(uint64_t seq, Settlement how);
  /// Writes what was appended to the file (no fsync).
  void flush();
  /// flush() and fdatasync(2).
  void sync();
  /// Writes appended and not yet settled.
  uint64_t open_writes() const { return open_total_; }
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

/// Journal state of a directory: writes awaiting replay (kWrite without kSettled, across each
/// writer's segments) and bytes on disk. Reads every segment.
struct Summary {
  uint64_t segments = 0;
  uint64_t bytes = 0;
  uint64_t unsettled = 0;
  uint64_t torn = 0;  // segments with a torn tail
};
Summary summarize(const std::filesystem::path& dir);

/// Deletes the segments of writers other than the running ones whose every write is settled
/// (an earlier run of the proxy left nothing to replay). Returns the summary of what is left.
Summary prune(const std::filesystem::path& dir);

}  // namespace zdm::journal
