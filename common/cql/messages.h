// Message bodies of the native protocol (native_protocol_v4.spec §4; v5 differences noted).
// Each message decodes from a Reader for a protocol version and encodes into a Writer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/cql/frame.h"
#include "common/cql/notation.h"
#include "common/cql/types.h"

namespace zdm::cql {

/// Error codes, native_protocol_v4.spec §9.
enum class ErrorCode : int32_t {
  kServerError = 0x0000,
  kProtocolError = 0x000A,
  kAuthenticationError = 0x0100,
  kUnavailable = 0x1000,
  kOverloaded = 0x1001,
  kIsBootstrapping = 0x1002,
  kTruncateError = 0x1003,
  kWriteTimeout = 0x1100,
  kReadTimeout = 0x1200,
  kReadFailure = 0x1300,
  kFunctionFailure = 0x1400,
  kWriteFailure = 0x1500,
  kCdcWriteFailure = 0x1600,
  kCasWriteUnknown = 0x1700,
  kSyntaxError = 0x2000,
  kUnauthorized = 0x2100,
  kInvalid = 0x2200,
  kConfigError = 0x2300,
  kAlreadyExists = 0x2400,
  kUnprepared = 0x2500,
};

/// ERROR (§4.2.1): code, message, and the code-specific rest kept as raw bytes.
struct ErrorMsg {
  ErrorCode code = ErrorCode::kServerError;
  std::string message;
  Bytes extra;  // code-specific fields, verbatim

  static ErrorMsg decode(Reader& r);
  void encode(Writer& w) const;
  /// UNPREPARED carrying the unknown prepared id (§4.2.1 0x2500).
  static ErrorMsg unprepared(std::string message, BytesView id);
  /// ALREADY_EXISTS with keyspace and table ("" for a keyspace) (§4.2.1 0x2400).
  static ErrorMsg already_exists(std::string message, std::string_view ks, std::string_view table);
  /// The prepared id of an UNPREPARED error; throws ProtocolError if code is not UNPREPARED.
  Bytes unprepared_id() const;
};

/// STARTUP (§4.1.1): string map with CQL_VERSION, COMPRESSION, ...
struct StartupMsg {
  StringMap options;
  static StartupMsg decode(Reader& r) { return {r.read_string_map()}; }
  void encode(Writer& w) const { w.write_string_map(options); }
};

/// SUPPORTED (§4.2.4): string multimap.
struct SupportedMsg {
  StringMultimap options;
  static SupportedMsg decode(Reader& r) { return {r.read_string_multimap()}; }
  void encode(Writer& w) const { w.write_string_multimap(options); }
};

/// AUTHENTICATE (§4.2.3): authenticator class name.
struct AuthenticateMsg {
  std::string authenticator;
  static AuthenticateMsg decode(Reader& r) { return {r.read_string()}; }
  void encode(Writer& w) const { w.write_string(authenticator); }
};

/// REGISTER (§4.1.8): event types.
struct RegisterMsg {
  std::vector<std::string> events;
  static RegisterMsg decode(Reader& r) { return {r.read_string_list()}; }
  void encode(Writer& w) const { w.write_string_list(events); }
};

/// Query parameter flags (§4.1.4; [byte] in v3/v4, [int] in v5).
namespace query_flag {
inline constexpr uint32_t kValues = 0x01;
inline constexpr uint32_t kSkipMetadata = 0x02;
inline constexpr uint32_t kPageSize = 0x04;
inline constexpr uint32_t kPagingState = 0x08;
inline constexpr uint32_t kSerialConsistency = 0x10;
inline constexpr uint32_t kDefaultTimestamp = 0x20;
inline constexpr uint32_t kNamesForValues = 0x40;
inline constexpr uint32_t kKeyspace = 0x80;       // v5
inline constexpr uint32_t kNowInSeconds = 0x100;  // v5
}  // namespace query_flag

/// The <query_parameters> of QUERY and EXECUTE (§4.1.4).
struct QueryParameters {
  Consistency consistency = Consistency::kOne;
  uint32_t flags = 0;
  std::vector<Value> values;
  std::vector<std::string> names;  // when kNamesForValues
  int32_t page_size = -1;
  std::optional<Bytes> paging_state;
  Consistency serial_consistency = Consistency::kSerial;
  int64_t timestamp = 0;
  std::string keyspace;        // v5
  int32_t now_in_seconds = 0;  // v5

  static QueryParameters decode(Reader& r, uint8_t version);
  void encode(Writer& w, uint8_t version) const;
};

/// QUERY (§4.1.4).
struct QueryMsg {
  std::string query;
  QueryParameters params;
  static QueryMsg decode(Reader& r, uint8_t version);
  void encode(Writer& w, uint8_t version) const;
};

/// PREPARE (§4.1.5; v5 adds flags and keyspace).
struct PrepareMsg {
  std::string query;
  std::string keyspace;  // v5
  static PrepareMsg decode(Reader& r, uint8_t version);
  void encode(Writer& w, uint8_t version) const;
};

/// EXECUTE (§4.1.6; v5 adds result_metadata_id).
struct ExecuteMsg {
  Bytes id;
  Bytes result_metadata_id;  // v5
  QueryParameters params;
  static ExecuteMsg decode(Reader& r, uint8_t version);
  void encode(Writer& w, uint8_t version) const;
};

/// BATCH types (§4.1.7).
enum class BatchType : uint8_t { kLogged = 0, kUnlogged = 1, kCounter = 2 };

/// One statement of a BATCH: a query string or a prepared id, with its values.
struct BatchChild {
  bool prepared = false;
  std::string query;  // when !prepared
  Bytes id;           // when prepared
  std::vector<Value> values;
};

/// BATCH (§4.1.7).
struct BatchMsg {
  BatchType type = BatchType::kLogged;
  std::vector<BatchChild> children;
  Consistency consistency = Consistency::kOne;
  uint32_t flags = 0;
  Consistency serial_consistency = Consistency::kSerial;
  int64_t timestamp = 0;
  std::string keyspace;        // v5
  int32_t now_in_seconds = 0;  // v5
  static BatchMsg decode(Reader& r, uint8_t version);
  void encode(Writer& w, uint8_t version) const;
};

/// RESULT kinds (§4.2.5).
enum class ResultKind : int32_t {
  kVoid = 0x0001,
  kRows = 0x0002,
  kSetKeyspace = 0x0003,
  kPrepared = 0x0004,
  kSchemaChange = 0x0005,
};

/// Column specification (§4.2.5.2): keyspace and table are empty when a global spec is used.
struct ColumnSpec {
  std::string keyspace, table, name;
  DataType type;
  bool operator==(const ColumnSpec&) const = default;
};

/// Rows metadata flags (§4.2.5.2).
namespace rows_flag {
inline constexpr int32_t kGlobalTablesSpec = 0x0001;
inline constexpr int32_t kHasMorePages = 0x0002;
inline constexpr int32_t kNoMetadata = 0x0004;
inline constexpr int32_t kMetadataChanged = 0x0008;  // v5
}  // namespace rows_flag

/// <metadata> of a Rows result (§4.2.5.2). On encode, a global table spec is written when
/// every column has the same keyspace and table.
struct RowsMetadata {
  int32_t flags = 0;
  int32_t column_count = 0;
  std::optional<Bytes> paging_state;
  Bytes new_metadata_id;  // v5, when kMetadataChanged
  std::vector<ColumnSpec> columns;

  static RowsMetadata decode(Reader& r, uint8_t version);
  void encode(Writer& w, uint8_t version) const;
};

using Row = std::vector<std::optional<Bytes>>;

/// Rows result (§4.2.5.2).
struct RowsResult {
  RowsMetadata metadata;
  std::vector<Row> rows;
};

/// Set_keyspace result (§4.2.5.3).
struct SetKeyspaceResult {
  std::string keyspace;
};

/// Prepared metadata (§4.2.5.4): flags, pk indices, bound variable specs.
struct PreparedMetadata {
  int32_t flags = 0;
  std::vector<uint16_t> pk_indices;
  std::vector<ColumnSpec> columns;
};

/// Prepared result (§4.2.5.4).
struct PreparedResult {
  Bytes id;
  Bytes result_metadata_id;  // v5
  PreparedMetadata metadata;
  RowsMetadata result_metadata;
};

/// Schema_change result and SCHEMA_CHANGE event body (§4.2.5.5, §4.2.6).
struct SchemaChange {
  std::string change_type;  // CREATED, UPDATED, DROPPED
  std::string target;       // KEYSPACE, TABLE, TYPE, FUNCTION, AGGREGATE
  std::string keyspace;
  std::string name;                    // table/type/function name; empty for KEYSPACE
  std::vector<std::string> arg_types;  // FUNCTION/AGGREGATE

  static SchemaChange decode(Reader& r);
  void encode(Writer& w) const;
};

struct VoidResult {};

/// RESULT (§4.2.5).
struct ResultMsg {
  std::variant<VoidResult, RowsResult, SetKeyspaceResult, PreparedResult, SchemaChange> body;

  ResultKind kind() const;
  static ResultMsg decode(Reader& r, uint8_t version);
  void encode(Writer& w, uint8_t version) const;
};

/// EVENT (§4.2.6).
struct EventMsg {
  std::string type;    // TOPOLOGY_CHANGE, STATUS_CHANGE, SCHEMA_CHANGE
  std::string change;  // NEW_NODE/REMOVED_NODE, UP/DOWN
  Inet address;
  SchemaChange schema_change;

  static EventMsg decode(Reader& r);
  void encode(Writer& w) const;
};

/// Encodes a message into a complete frame (header + body).
/// `Msg` must have encode(Writer&) or encode(Writer&, version).
template <class Msg>
Bytes encode_message(uint8_t version, bool response, int16_t stream, Opcode op, const Msg& msg,
                     uint8_t flags = 0) {
  Bytes out(kHeaderSize);
  Writer w(out);
  if constexpr (requires { msg.encode(w, version); }) {
    msg.encode(w, version);
  } else {
    msg.encode(w);
  }
  Header h{version, response, flags, stream, op, static_cast<uint32_t>(out.size() - kHeaderSize)};
  encode_header(h, out.data());
  return out;
}

/// Encodes a frame with an empty body (READY, OPTIONS).
Bytes encode_empty(uint8_t version, bool response, int16_t stream, Opcode op);

/// Encodes an ERROR response frame.
Bytes encode_error(uint8_t version, int16_t stream, ErrorCode code, std::string message);

/// Skips the optional tracing id, warnings and custom payload that precede a response body
/// when the header flags say so (§2.2). Leaves the reader at the message body.
void skip_response_prefix(Reader& r, uint8_t flags);

/// Skips the custom payload of a request body when flag kCustomPayload is set (§2.2).
void skip_request_prefix(Reader& r, uint8_t flags);

/// Where the [consistency] short of request `op` sits in `body` (uncompressed, protocol
/// `version`; `prefix_end`: where the message starts, after a custom payload, 0 without one):
/// QUERY after its query string (§4.1.4), EXECUTE after its id (and, v5, its result metadata
/// id, §4.1.6), BATCH after its statements (§4.1.7). nullopt for other opcodes. Reads lengths
/// only: no allocation. Throws ProtocolError when the body ends before the 2 bytes of the
/// consistency.
std::optional<std::size_t> consistency_offset(BytesView body, std::size_t prefix_end, Opcode op,
                                              uint8_t version);

/// The message of the ERROR response `f` (body uncompressed; tracing id, warnings and custom
/// payload skipped as its flags say, §4.2.1), and its code in `*code` when given.
/// Never throws: a body that cannot be read gives "unreadable ERROR: <why>" and leaves `*code`
/// as it was.
std::string error_text(const Frame& f, ErrorCode* code = nullptr);

}  // namespace zdm::cql
