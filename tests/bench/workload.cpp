#include "tests/bench/workload.h"

#include <stdexcept>

#include "common/cql/messages.h"

namespace zdm::bench {

std::string Schema::create_keyspace() const {
  return "CREATE KEYSPACE IF NOT EXISTS " + keyspace +
         " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}";
}
std::string Schema::create_table() const {
  return "CREATE TABLE IF NOT EXISTS " + keyspace + "." + table + " (k bigint PRIMARY KEY, v blob)";
}
std::string Schema::select() const {
  return "SELECT v FROM " + keyspace + "." + table + " WHERE k = ?";
}
std::string Schema::insert() const {
  return "INSERT INTO " + keyspace + "." + table + " (k, v) VALUES (?, ?)";
}

namespace {

// EXECUTE body in v3/v4: [short bytes id][consistency][byte flags][short n][value]... then the
// optional fields in flag order (spec §4.1.4, §4.1.6).
constexpr std::size_t key_offset(std::size_t id_size) {
  return 2 + id_size + 2 + 1 + 2 + 4;
}

Bytes execute_body(uint8_t version, BytesView id, cql::Consistency consistency, uint32_t flags,
                   std::vector<cql::Value> values, int32_t page_size) {
  cql::ExecuteMsg m;
  m.id.assign(id.begin(), id.end());
  m.params.consistency = consistency;
  m.params.flags = flags;
  m.params.values = std::move(values);
  m.params.page_size = page_size;
  m.params.timestamp = 0;
  Bytes body;
  cql::Writer w(body);
  m.encode(w, version);
  return body;
}

}  // namespace

RequestBuilder::RequestBuilder(uint8_t version, cql::Compression compression, BytesView select_id,
                               BytesView insert_id, std::size_t value_size,
                               cql::Consistency consistency)
    : version_(version), compression_(compression) {
  if (version != 3 && version != 4)
    throw std::invalid_argument("cqlbench speaks protocol v3 and v4 (got v" +
                                std::to_string(version) + ")");
  if (compression == cql::Compression::kSnappy)
    throw std::invalid_argument("cqlbench compresses with lz4 only");
  using namespace cql::query_flag;
  const Bytes key(8);
  read_ = execute_body(version, select_id, consistency, kValues | kSkipMetadata | kPageSize,
                       {cql::Value::of(key)}, 5000);
  read_key_at_ = key_offset(select_id.size());
  Bytes value(value_size);
  for (std::size_t i = 0; i < value_size; ++i) value[i] = static_cast<std::byte>('a' + i % 26);
  write_ = execute_body(version, insert_id, consistency, kValues | kDefaultTimestamp,
                        {cql::Value::of(key), cql::Value::of(value)}, -1);
  write_key_at_ = key_offset(insert_id.size());
  write_ts_at_ = write_.size() - 8;
}

void RequestBuilder::fill(Op op, int64_t key, int64_t timestamp_us) {
  if (op == Op::kRead) {
    scratch_ = read_;
    put_be64(scratch_.data() + read_key_at_, static_cast<uint64_t>(key));
  } else {
    scratch_ = write_;
    put_be64(scratch_.data() + write_key_at_, static_cast<uint64_t>(key));
    put_be64(scratch_.data() + write_ts_at_, static_cast<uint64_t>(timestamp_us));
  }
}

Bytes RequestBuilder::body(Op op, int64_t key, int64_t timestamp_us) {
  fill(op, key, timestamp_us);
  return scratch_;
}

void RequestBuilder::append(Op op, int16_t stream, int64_t key, int64_t timestamp_us, Bytes& out) {
  const std::size_t at = out.size();
  cql::Header h{version_, false, 0, stream, cql::Opcode::kExecute, 0};
  if (compression_ == cql::Compression::kNone) {
    const Bytes& t = op == Op::kRead ? read_ : write_;
    h.length = static_cast<uint32_t>(t.size());
    out.resize(at + cql::kHeaderSize + t.size());
    cql::encode_header(h, out.data() + at);
    std::byte* body = out.data() + at + cql::kHeaderSize;
    std::copy(t.begin(), t.end(), body);
    if (op == Op::kRead) {
      put_be64(body + read_key_at_, static_cast<uint64_t>(key));
    } else {
      put_be64(body + write_key_at_, static_cast<uint64_t>(key));
      put_be64(body + write_ts_at_, static_cast<uint64_t>(timestamp_us));
    }
    return;
  }
  // LZ4 (v4 §5): [4-byte big-endian uncompressed length][LZ4 block].
  fill(op, key, timestamp_us);
  out.resize(at + cql::kHeaderSize + 4);
  put_be32(out.data() + at + cql::kHeaderSize, static_cast<uint32_t>(scratch_.size()));
  std::size_t block = cql::lz4_compress_block(scratch_, out);
  h.flags = cql::flag::kCompression;
  h.length = static_cast<uint32_t>(4 + block);
  cql::encode_header(h, out.data() + at);
}

Bytes startup_frame(uint8_t version, cql::Compression compression) {
  cql::StartupMsg m;
  m.options["CQL_VERSION"] = "3.0.0";
  if (compression != cql::Compression::kNone)
    m.options["COMPRESSION"] = std::string(cql::compression_name(compression));
  return cql::encode_message(version, false, 0, cql::Opcode::kStartup, m);
}

Bytes query_frame(uint8_t version, int16_t stream, std::string_view query,
                  cql::Consistency consistency) {
  cql::QueryMsg m;
  m.query = std::string(query);
  m.params.consistency = consistency;
  return cql::encode_message(version, false, stream, cql::Opcode::kQuery, m);
}

Bytes prepare_frame(uint8_t version, int16_t stream, std::string_view query) {
  cql::PrepareMsg m;
  m.query = std::string(query);
  return cql::encode_message(version, false, stream, cql::Opcode::kPrepare, m);
}

Bytes auth_response_frame(uint8_t version, int16_t stream, BytesView token) {
  Bytes body;
  cql::Writer w(body);
  w.write_bytes(token);
  return cql::encode_frame(cql::Header{version, false, 0, stream, cql::Opcode::kAuthResponse, 0},
                           body);
}

Bytes compress_frame(const Bytes& frame, cql::Compression compression) {
  if (compression == cql::Compression::kNone || frame.size() <= cql::kHeaderSize) return frame;
  cql::Header h = cql::decode_header(BytesView(frame.data(), cql::kHeaderSize));
  Bytes body = cql::compress_body(
      compression, BytesView(frame.data() + cql::kHeaderSize, frame.size() - cql::kHeaderSize));
  h.flags |= cql::flag::kCompression;
  return cql::encode_frame(h, body);
}

}  // namespace zdm::bench
