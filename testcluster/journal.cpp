#include "testcluster/journal.h"

#include "common/cql/notation.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace zdm::testcluster {

namespace {

constexpr const char* kSnapshot = "snapshot.bin";
constexpr const char* kLog = "log.bin";

void write_record(std::FILE* f, cql::BytesView record) {
  unsigned char len[4];
  uint32_t n = static_cast<uint32_t>(record.size());
  len[0] = static_cast<unsigned char>(n >> 24);
  len[1] = static_cast<unsigned char>(n >> 16);
  len[2] = static_cast<unsigned char>(n >> 8);
  len[3] = static_cast<unsigned char>(n);
  if (std::fwrite(len, 1, 4, f) != 4 || (n && std::fwrite(record.data(), 1, n, f) != n))
    throw std::runtime_error(std::string("cannot write the data log: ") + std::strerror(errno));
}

void read_file(const std::string& path, const std::function<void(cql::BytesView)>& apply) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return;
  std::vector<std::byte> buf;
  for (;;) {
    unsigned char len[4];
    if (std::fread(len, 1, 4, f) != 4) break;
    uint32_t n = (uint32_t{len[0]} << 24) | (uint32_t{len[1]} << 16) | (uint32_t{len[2]} << 8) |
                 uint32_t{len[3]};
    buf.resize(n);
    if (n && std::fread(buf.data(), 1, n, f) != n) break;  // torn write: stop here
    apply(cql::BytesView(buf.data(), buf.size()));
  }
  std::fclose(f);
}

void encode_cell(cql::Writer& w, const CellData& c) {
  w.write_long(c.ts);
  if (!c.present()) return;
  w.write_byte(c.tombstone ? 1 : 0);
  w.write_int(c.ttl);
  w.write_int(c.expires);
  w.write_bytes(cql::BytesView(c.value));
}
CellData decode_cell(cql::Reader& r) {
  CellData c;
  c.ts = r.read_long();
  if (!c.present()) return c;
  c.tombstone = r.read_byte() != 0;
  c.ttl = r.read_int();
  c.expires = r.read_int();
  auto v = r.read_bytes();
  c.value = v ? std::move(*v) : Bytes{};
  return c;
}
}  // namespace

void encode_key(cql::Writer& w, const std::vector<Bytes>& k) {
  w.write_short(static_cast<uint16_t>(k.size()));
  for (const auto& b : k) w.write_bytes(cql::BytesView(b));
}
std::vector<Bytes> decode_key(cql::Reader& r) {
  std::vector<Bytes> k(r.read_short());
  for (auto& b : k) {
    auto v = r.read_bytes();
    b = v ? std::move(*v) : Bytes{};
  }
  return k;
}
void encode_row(cql::Writer& w, const RowData& row) {
  encode_cell(w, row.marker);
  w.write_long(row.deleted_at);
  w.write_short(static_cast<uint16_t>(row.slots.size()));
  for (const auto& s : row.slots) {
    encode_cell(w, s.cell);
    w.write_byte(s.complex ? 1 : 0);
    if (!s.complex) continue;
    w.write_long(s.complex->deleted_at);
    w.write_int(static_cast<int32_t>(s.complex->elems.size()));
    for (const auto& [k, c] : s.complex->elems) {
      w.write_bytes(cql::BytesView(k));
      encode_cell(w, c);
    }
  }
}
void decode_row(cql::Reader& r, const Table& t, RowData& row) {
  row.marker = decode_cell(r);
  row.deleted_at = r.read_long();
  uint16_t n = r.read_short();
  if (n != t.slot_count()) throw cql::ProtocolError("row image does not fit the table");
  row.slots.clear();
  row.slots.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    Slot& s = row.slots[i];
    s.cell = decode_cell(r);
    if (r.read_byte() == 0) continue;
    ComplexData& c = complex_of(s, t.columns[t.key_size() + i]);
    c.deleted_at = r.read_long();
    int32_t count = r.read_int();
    for (int32_t j = 0; j < count; ++j) {
      auto k = r.read_bytes();
      c.elems[k ? *k : Bytes{}] = decode_cell(r);
    }
  }
}

Bytes partition_record(const Table& t, const PartitionData& p) {
  Bytes out;
  cql::Writer w(out);
  w.write_byte('P');
  w.write_string(t.keyspace);
  w.write_string(t.name);
  encode_key(w, p.pk);
  w.write_long(p.deleted_at);
  encode_row(w, p.statics);
  w.write_int(static_cast<int32_t>(p.ranges.size()));
  for (const auto& r : p.ranges) {
    encode_key(w, r.from);
    w.write_byte(r.from_inclusive ? 1 : 0);
    encode_key(w, r.to);
    w.write_byte(r.to_inclusive ? 1 : 0);
    w.write_long(r.ts);
  }
  return out;
}

Bytes row_record(const Table& t, const std::vector<Bytes>& pk, const Key& ck, const RowData* row) {
  Bytes out;
  cql::Writer w(out);
  w.write_byte('R');
  w.write_string(t.keyspace);
  w.write_string(t.name);
  encode_key(w, pk);
  encode_key(w, ck);
  w.write_byte(row ? 1 : 0);
  if (row) encode_row(w, *row);
  return out;
}

Bytes ddl_record(const std::string& ks, const std::string& cql) {
  Bytes out;
  cql::Writer w(out);
  w.write_byte('D');
  w.write_string(ks);
  w.write_long_string(cql);
  return out;
}

Journal::Journal(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("--data-dir " + dir_ + ": " + ec.message());
  open_log();
}

Journal::~Journal() {
  if (log_) std::fclose(log_);
}

void Journal::open_log() {
  log_ = std::fopen((dir_ + "/" + kLog).c_str(), "ab");
  if (!log_)
    throw std::runtime_error("--data-dir " + dir_ + ": cannot open " + kLog + ": " +
                             std::strerror(errno));
}

void Journal::replay(const std::function<void(cql::BytesView)>& apply) const {
  read_file(dir_ + "/" + kSnapshot, apply);
  read_file(dir_ + "/" + kLog, apply);
}

void Journal::append(cql::BytesView record) {
  write_record(log_, record);
}

void Journal::flush() {
  std::fflush(log_);
}

void Journal::snapshot(
    const std::function<void(const std::function<void(cql::BytesView)>&)>& write) {
  std::string tmp = dir_ + "/" + kSnapshot + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
  try {
    write([&](cql::BytesView record) { write_record(f, record); });
  } catch (...) {
    std::fclose(f);
    throw;
  }
  std::fflush(f);
  std::fclose(f);
  std::filesystem::rename(tmp, dir_ + "/" + kSnapshot);
  std::fclose(log_);
  log_ = std::fopen((dir_ + "/" + kLog).c_str(), "wb");  // the snapshot holds it all now
  if (!log_) open_log();
}

}  // namespace zdm::testcluster
