#include "common/cql/messages.h"

#include "common/cql/version.h"

namespace zdm::cql {
namespace {

uint32_t read_flags(Reader& r, uint8_t version) {
  return uses_int_query_flags(version) ? static_cast<uint32_t>(r.read_int()) : r.read_byte();
}
void write_flags(Writer& w, uint8_t version, uint32_t flags) {
  if (uses_int_query_flags(version)) {
    w.write_int(static_cast<int32_t>(flags));
  } else {
    w.write_byte(static_cast<uint8_t>(flags));
  }
}

ColumnSpec read_column(Reader& r, bool global, const std::string& ks, const std::string& table) {
  ColumnSpec c;
  if (global) {
    c.keyspace = ks;
    c.table = table;
  } else {
    c.keyspace = r.read_string();
    c.table = r.read_string();
  }
  c.name = r.read_string();
  c.type = read_type(r);
  return c;
}

// Smallest encoding of a <col_spec>: empty [string]s and a 2-byte type id (§4.2.5.2).
std::size_t min_column_size(bool global) {
  return global ? 2 + 2 : 2 + 2 + 2 + 2;
}

std::vector<ColumnSpec> read_columns(Reader& r, int32_t count, bool global) {
  std::string ks, table;
  if (global) {
    ks = r.read_string();
    table = r.read_string();
  }
  r.check_count(static_cast<uint64_t>(count), min_column_size(global), "column specs");
  std::vector<ColumnSpec> cols;
  cols.reserve(static_cast<std::size_t>(count));
  for (int32_t i = 0; i < count; ++i) cols.push_back(read_column(r, global, ks, table));
  return cols;
}

bool same_table(const std::vector<ColumnSpec>& cols) {
  if (cols.empty()) return false;
  for (const auto& c : cols)
    if (c.keyspace != cols[0].keyspace || c.table != cols[0].table) return false;
  return true;
}

void write_columns(Writer& w, const std::vector<ColumnSpec>& cols, bool global) {
  if (global) {
    w.write_string(cols[0].keyspace);
    w.write_string(cols[0].table);
  }
  for (const auto& c : cols) {
    if (!global) {
      w.write_string(c.keyspace);
      w.write_string(c.table);
    }
    w.write_string(c.name);
    write_type(w, c.type);
  }
}

}  // namespace

ErrorMsg ErrorMsg::decode(Reader& r) {
  ErrorMsg e;
  e.code = static_cast<ErrorCode>(r.read_int());
  e.message = r.read_string();
  auto rest = r.rest();
  e.extra.assign(rest.begin(), rest.end());
  r.read_raw(rest.size());
  return e;
}

void ErrorMsg::encode(Writer& w) const {
  w.write_int(static_cast<int32_t>(code));
  w.write_string(message);
  w.write_raw(extra);
}

ErrorMsg ErrorMsg::unprepared(std::string message, BytesView id) {
  ErrorMsg e{ErrorCode::kUnprepared, std::move(message), {}};
  Writer w(e.extra);
  w.write_short_bytes(id);
  return e;
}

ErrorMsg ErrorMsg::already_exists(std::string message, std::string_view ks,
                                  std::string_view table) {
  ErrorMsg e{ErrorCode::kAlreadyExists, std::move(message), {}};
  Writer w(e.extra);
  w.write_string(ks);
  w.write_string(table);
  return e;
}

Bytes ErrorMsg::unprepared_id() const {
  if (code != ErrorCode::kUnprepared) throw ProtocolError("not an UNPREPARED error");
  Reader r(extra);
  return r.read_short_bytes();
}

QueryParameters QueryParameters::decode(Reader& r, uint8_t version) {
  QueryParameters p;
  p.consistency = r.read_consistency();
  p.flags = read_flags(r, version);
  if (p.flags & query_flag::kValues) {
    uint16_t n = r.read_short();
    const bool named = p.flags & query_flag::kNamesForValues;
    r.check_count(n, named ? 2 + 4 : 4, "values");
    p.values.reserve(n);
    if (named) p.names.reserve(n);
    for (uint16_t i = 0; i < n; ++i) {
      if (p.flags & query_flag::kNamesForValues) p.names.push_back(r.read_string());
      p.values.push_back(r.read_value());
    }
  }
  if (p.flags & query_flag::kPageSize) p.page_size = r.read_int();
  if (p.flags & query_flag::kPagingState) p.paging_state = r.read_bytes();
  if (p.flags & query_flag::kSerialConsistency) p.serial_consistency = r.read_consistency();
  if (p.flags & query_flag::kDefaultTimestamp) p.timestamp = r.read_long();
  if (uses_keyspace_flag(version) && (p.flags & query_flag::kKeyspace))
    p.keyspace = r.read_string();
  if (uses_int_query_flags(version) && (p.flags & query_flag::kNowInSeconds))
    p.now_in_seconds = r.read_int();
  return p;
}

void QueryParameters::encode(Writer& w, uint8_t version) const {
  w.write_consistency(consistency);
  uint32_t f = flags;
  if (!values.empty()) f |= query_flag::kValues;
  write_flags(w, version, f);
  if (f & query_flag::kValues) {
    w.write_short(static_cast<uint16_t>(values.size()));
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (f & query_flag::kNamesForValues) w.write_string(names.at(i));
      w.write_value(values[i]);
    }
  }
  if (f & query_flag::kPageSize) w.write_int(page_size);
  if (f & query_flag::kPagingState) w.write_bytes(paging_state);
  if (f & query_flag::kSerialConsistency) w.write_consistency(serial_consistency);
  if (f & query_flag::kDefaultTimestamp) w.write_long(timestamp);
  if (uses_keyspace_flag(version) && (f & query_flag::kKeyspace)) w.write_string(keyspace);
  if (uses_int_query_flags(version) && (f & query_flag::kNowInSeconds)) w.write_int(now_in_seconds);
}

QueryMsg QueryMsg::decode(Reader& r, uint8_t version) {
  QueryMsg q;
  q.query = r.read_long_string();
  q.params = QueryParameters::decode(r, version);
  return q;
}

void QueryMsg::encode(Writer& w, uint8_t version) const {
  w.write_long_string(query);
  params.encode(w, version);
}

PrepareMsg PrepareMsg::decode(Reader& r, uint8_t version) {
  PrepareMsg p;
  p.query = r.read_long_string();
  if (uses_prepare_flags(version)) {
    int32_t flags = r.read_int();
    if (uses_keyspace_flag(version) && (flags & 0x01)) p.keyspace = r.read_string();
  }
  return p;
}

void PrepareMsg::encode(Writer& w, uint8_t version) const {
  w.write_long_string(query);
  if (uses_prepare_flags(version)) {
    const bool with_keyspace = uses_keyspace_flag(version) && !keyspace.empty();
    w.write_int(with_keyspace ? 0x01 : 0);
    if (with_keyspace) w.write_string(keyspace);
  }
}

ExecuteMsg ExecuteMsg::decode(Reader& r, uint8_t version) {
  ExecuteMsg e;
  e.id = r.read_short_bytes();
  if (uses_result_metadata_id(version)) e.result_metadata_id = r.read_short_bytes();
  e.params = QueryParameters::decode(r, version);
  return e;
}

void ExecuteMsg::encode(Writer& w, uint8_t version) const {
  w.write_short_bytes(id);
  if (uses_result_metadata_id(version)) w.write_short_bytes(result_metadata_id);
  params.encode(w, version);
}

BatchMsg BatchMsg::decode(Reader& r, uint8_t version) {
  BatchMsg b;
  uint8_t type = r.read_byte();
  if (type > 2) throw ProtocolError("invalid BATCH type " + std::to_string(type));
  b.type = static_cast<BatchType>(type);
  uint16_t n = r.read_short();
  // Smallest child: <kind>, an empty [short bytes] id, a zero value count.
  r.check_count(n, 1 + 2 + 2, "BATCH statements");
  b.children.reserve(n);
  for (uint16_t i = 0; i < n; ++i) {
    BatchChild c;
    uint8_t kind = r.read_byte();
    if (kind == 0) {
      c.query = r.read_long_string();
    } else if (kind == 1) {
      c.prepared = true;
      c.id = r.read_short_bytes();
    } else {
      throw ProtocolError("invalid BATCH statement kind " + std::to_string(kind));
    }
    uint16_t nv = r.read_short();
    r.check_count(nv, 4, "values");
    c.values.reserve(nv);
    for (uint16_t j = 0; j < nv; ++j) c.values.push_back(r.read_value());
    b.children.push_back(std::move(c));
  }
  b.consistency = r.read_consistency();
  b.flags = read_flags(r, version);
  if (b.flags & query_flag::kSerialConsistency) b.serial_consistency = r.read_consistency();
  if (b.flags & query_flag::kDefaultTimestamp) b.timestamp = r.read_long();
  if (uses_keyspace_flag(version) && (b.flags & query_flag::kKeyspace))
    b.keyspace = r.read_string();
  if (uses_int_query_flags(version) && (b.flags & query_flag::kNowInSeconds))
    b.now_in_seconds = r.read_int();
  return b;
}

void BatchMsg::encode(Writer& w, uint8_t version) const {
  w.write_byte(static_cast<uint8_t>(type));
  w.write_short(static_cast<uint16_t>(children.size()));
  for (const auto& c : children) {
    w.write_byte(c.prepared ? 1 : 0);
    if (c.prepared) {
      w.write_short_bytes(c.id);
    } else {
      w.write_long_string(c.query);
    }
    w.write_short(static_cast<uint16_t>(c.values.size()));
    for (const auto& v : c.values) w.write_value(v);
  }
  w.write_consistency(consistency);
  write_flags(w, version, flags);
  if (flags & query_flag::kSerialConsistency) w.write_consistency(serial_consistency);
  if (flags & query_flag::kDefaultTimestamp) w.write_long(timestamp);
  if (uses_keyspace_flag(version) && (flags & query_flag::kKeyspace)) w.write_string(keyspace);
  if (uses_int_query_flags(version) && (flags & query_flag::kNowInSeconds))
    w.write_int(now_in_seconds);
}

RowsMetadata RowsMetadata::decode(Reader& r, uint8_t version) {
  RowsMetadata m;
  m.flags = r.read_int();
  m.column_count = r.read_int();
  if (m.column_count < 0) throw ProtocolError("negative column count");
  if (m.flags & rows_flag::kHasMorePages) m.paging_state = r.read_bytes();
  if (uses_result_metadata_id(version) && (m.flags & rows_flag::kMetadataChanged))
    m.new_metadata_id = r.read_short_bytes();
  if (!(m.flags & rows_flag::kNoMetadata))
    m.columns = read_columns(r, m.column_count, m.flags & rows_flag::kGlobalTablesSpec);
  return m;
}

void RowsMetadata::encode(Writer& w, uint8_t version) const {
  int32_t f = flags & ~rows_flag::kGlobalTablesSpec;
  if (paging_state) {
    f |= rows_flag::kHasMorePages;
  } else {
    f &= ~rows_flag::kHasMorePages;
  }
  bool no_meta = f & rows_flag::kNoMetadata;
  bool global = !no_meta && same_table(columns);
  if (global) f |= rows_flag::kGlobalTablesSpec;
  w.write_int(f);
  w.write_int(no_meta ? column_count : static_cast<int32_t>(columns.size()));
  if (paging_state) w.write_bytes(paging_state);
  if (uses_result_metadata_id(version) && (f & rows_flag::kMetadataChanged))
    w.write_short_bytes(new_metadata_id);
  if (!no_meta) write_columns(w, columns, global);
}

SchemaChange SchemaChange::decode(Reader& r) {
  SchemaChange s;
  s.change_type = r.read_string();
  s.target = r.read_string();
  s.keyspace = r.read_string();
  if (s.target != "KEYSPACE") s.name = r.read_string();
  if (s.target == "FUNCTION" || s.target == "AGGREGATE") s.arg_types = r.read_string_list();
  return s;
}

void SchemaChange::encode(Writer& w) const {
  w.write_string(change_type);
  w.write_string(target);
  w.write_string(keyspace);
  if (target != "KEYSPACE") w.write_string(name);
  if (target == "FUNCTION" || target == "AGGREGATE") w.write_string_list(arg_types);
}

ResultKind ResultMsg::kind() const {
  switch (body.index()) {
    case 0:
      return ResultKind::kVoid;
    case 1:
      return ResultKind::kRows;
    case 2:
      return ResultKind::kSetKeyspace;
    case 3:
      return ResultKind::kPrepared;
    default:
      return ResultKind::kSchemaChange;
  }
}

ResultMsg ResultMsg::decode(Reader& r, uint8_t version) {
  ResultMsg m;
  int32_t kind = r.read_int();
  switch (static_cast<ResultKind>(kind)) {
    case ResultKind::kVoid:
      m.body = VoidResult{};
      break;
    case ResultKind::kRows: {
      RowsResult rows;
      rows.metadata = RowsMetadata::decode(r, version);
      int32_t n = r.read_int();
      if (n < 0) throw ProtocolError("negative rows count");
      const int32_t cols = rows.metadata.column_count;
      // Every cell is at least a 4-byte [bytes] length. A row of no columns takes no bytes, so
      // its count cannot be checked against the body: Cassandra never sends one (a selection
      // has at least one column).
      if (cols == 0 && n > 0) {
        throw ProtocolError("RESULT Rows with 0 columns claims " + std::to_string(n) + " rows");
      }
      const std::size_t row_size = 4 * static_cast<std::size_t>(cols);
      if (static_cast<uint64_t>(n) > r.remaining() / (row_size ? row_size : 1)) {
        r.check_count(static_cast<uint64_t>(n), row_size,
                      "rows of " + std::to_string(cols) + " columns");
      }
      rows.rows.reserve(static_cast<std::size_t>(n));
      for (int32_t i = 0; i < n; ++i) {
        Row row;
        row.reserve(static_cast<std::size_t>(cols));
        for (int32_t c = 0; c < cols; ++c) row.push_back(r.read_bytes());
        rows.rows.push_back(std::move(row));
      }
      m.body = std::move(rows);
      break;
    }
    case ResultKind::kSetKeyspace:
      m.body = SetKeyspaceResult{r.read_string()};
      break;
    case ResultKind::kPrepared: {
      PreparedResult p;
      p.id = r.read_short_bytes();
      if (uses_result_metadata_id(version)) p.result_metadata_id = r.read_short_bytes();
      p.metadata.flags = r.read_int();
      int32_t ncols = r.read_int();
      int32_t npk = uses_pk_indices(version) ? r.read_int() : 0;  // v3 has no pk_count
      if (ncols < 0 || npk < 0) throw ProtocolError("negative prepared metadata count");
      r.check_count(static_cast<uint64_t>(npk), 2, "pk indices");
      p.metadata.pk_indices.reserve(static_cast<std::size_t>(npk));
      for (int32_t i = 0; i < npk; ++i) p.metadata.pk_indices.push_back(r.read_short());
      p.metadata.columns = read_columns(r, ncols, p.metadata.flags & rows_flag::kGlobalTablesSpec);
      p.result_metadata = RowsMetadata::decode(r, version);
      m.body = std::move(p);
      break;
    }
    case ResultKind::kSchemaChange:
      m.body = SchemaChange::decode(r);
      break;
    default:
      throw ProtocolError("unknown RESULT kind " + std::to_string(kind));
  }
  return m;
}

void ResultMsg::encode(Writer& w, uint8_t version) const {
  w.write_int(static_cast<int32_t>(kind()));
  if (const auto* rows = std::get_if<RowsResult>(&body)) {
    rows->metadata.encode(w, version);
    w.write_int(static_cast<int32_t>(rows->rows.size()));
    for (const auto& row : rows->rows)
      for (const auto& cell : row) w.write_bytes(cell);
  } else if (const auto* ks = std::get_if<SetKeyspaceResult>(&body)) {
    w.write_string(ks->keyspace);
  } else if (const auto* p = std::get_if<PreparedResult>(&body)) {
    w.write_short_bytes(p->id);
    if (uses_result_metadata_id(version)) w.write_short_bytes(p->result_metadata_id);
    bool global = same_table(p->metadata.columns);
    int32_t f = p->metadata.flags & ~rows_flag::kGlobalTablesSpec;
    if (global) f |= rows_flag::kGlobalTablesSpec;
    w.write_int(f);
    w.write_int(static_cast<int32_t>(p->metadata.columns.size()));
    if (uses_pk_indices(version)) {  // v3 prepared metadata has no pk_count (v3 §4.2.5.4)
      w.write_int(static_cast<int32_t>(p->metadata.pk_indices.size()));
      for (auto i : p->metadata.pk_indices) w.write_short(i);
    }
    if (!p->metadata.columns.empty()) write_columns(w, p->metadata.columns, global);
    p->result_metadata.encode(w, version);
  } else if (const auto* sc = std::get_if<SchemaChange>(&body)) {
    sc->encode(w);
  }
}

EventMsg EventMsg::decode(Reader& r) {
  EventMsg e;
  e.type = r.read_string();
  if (e.type == "SCHEMA_CHANGE") {
    e.schema_change = SchemaChange::decode(r);
  } else if (e.type == "TOPOLOGY_CHANGE" || e.type == "STATUS_CHANGE") {
    e.change = r.read_string();
    e.address = r.read_inet();
  } else {
    throw ProtocolError("unknown event type " + e.type);
  }
  return e;
}

void EventMsg::encode(Writer& w) const {
  w.write_string(type);
  if (type == "SCHEMA_CHANGE") {
    schema_change.encode(w);
  } else {
    w.write_string(change);
    w.write_inet(address);
  }
}

Bytes encode_empty(uint8_t version, bool response, int16_t stream, Opcode op) {
  Bytes out(kHeaderSize);
  encode_header(Header{version, response, 0, stream, op, 0}, out.data());
  return out;
}

Bytes encode_error(uint8_t version, int16_t stream, ErrorCode code, std::string message) {
  return encode_message(version, true, stream, Opcode::kError,
                        ErrorMsg{code, std::move(message), {}});
}

void skip_response_prefix(Reader& r, uint8_t flags) {
  if (flags & flag::kTracing) r.read_uuid();
  if (flags & flag::kWarning) r.read_string_list();
  if (flags & flag::kCustomPayload) {
    uint16_t n = r.read_short();
    for (uint16_t i = 0; i < n; ++i) {
      r.read_string();
      r.read_bytes_view();
    }
  }
}

void skip_request_prefix(Reader& r, uint8_t flags) {
  if (flags & flag::kCustomPayload) {
    uint16_t n = r.read_short();
    for (uint16_t i = 0; i < n; ++i) {
      r.read_string();
      r.read_bytes_view();
    }
  }
}

std::optional<std::size_t> consistency_offset(BytesView body, std::size_t prefix_end, Opcode op,
                                              uint8_t version) {
  Reader r(body);
  r.read_raw(prefix_end);
  switch (op) {
    case Opcode::kQuery:
      r.read_raw(static_cast<std::size_t>(r.read_int()));  // [long string] query
      break;
    case Opcode::kExecute:
      r.read_short_bytes_view();  // id
      if (uses_result_metadata_id(version)) r.read_short_bytes_view();
      break;
    case Opcode::kBatch: {
      r.read_byte();  // type
      const uint16_t n = r.read_short();
      for (uint16_t i = 0; i < n; ++i) {
        if (r.read_byte() == 0)
          r.read_raw(static_cast<std::size_t>(r.read_int()));  // [long string] query
        else
          r.read_short_bytes_view();  // id
        const uint16_t values = r.read_short();
        for (uint16_t v = 0; v < values; ++v) {
          const int32_t len = r.read_int();  // [value]: < 0 is null or unset
          if (len > 0) r.read_raw(static_cast<std::size_t>(len));
        }
      }
      break;
    }
    default:
      return std::nullopt;
  }
  const std::size_t at = r.position();
  r.read_short();  // the consistency itself must be there
  return at;
}

std::string error_text(const Frame& f, ErrorCode* code) {
  try {
    Reader r(f.body);
    skip_response_prefix(r, f.header.flags);
    auto e = ErrorMsg::decode(r);
    if (code) *code = e.code;
    return std::move(e.message);
  } catch (const ProtocolError& e) {
    return std::string("unreadable ERROR: ") + e.what();
  }
}

}  // namespace zdm::cql
