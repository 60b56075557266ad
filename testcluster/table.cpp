#include "testcluster/table.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

namespace zdm::testcluster {

namespace {

uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

uint64_t fmix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

int compare_unsigned(const Bytes& a, const Bytes& b) {
  std::size_t n = std::min(a.size(), b.size());
  if (n) {
    int c = std::memcmp(a.data(), b.data(), n);
    if (c != 0) return c < 0 ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

// Cassandra's Cells.reconcile: the newer write wins; on equal timestamps a tombstone wins, then
// the greater value, then the later expiry.
bool newer_than(const CellData& in, const CellData& old) {
  if (!old.present()) return true;
  if (in.ts != old.ts) return in.ts > old.ts;
  if (in.tombstone != old.tombstone) return in.tombstone;
  int c = compare_unsigned(in.value, old.value);
  if (c != 0) return c > 0;
  auto exp = [](const CellData& x) { return x.ttl > 0 ? x.expires : INT32_MAX; };
  return exp(in) > exp(old);
}

CellData make_cell(const std::optional<Bytes>& value, const WriteTime& wt) {
  CellData c;
  c.ts = wt.ts;
  if (value) {
    c.value = *value;
    c.ttl = wt.ttl;
    c.expires = wt.expires();
  } else {
    c.tombstone = true;
  }
  return c;
}

void purge_cell(CellData& c, int64_t deleted) {
  if (c.present() && c.ts <= deleted) c = CellData{};
}

void purge_row(RowData& row, int64_t deleted) {
  purge_cell(row.marker, deleted);
  for (auto& s : row.slots) {
    purge_cell(s.cell, deleted);
    if (s.complex) {
      auto& e = s.complex->elems;
      for (auto it = e.begin(); it != e.end();)
        it = it->second.ts <= deleted ? e.erase(it) : std::next(it);
      if (s.complex->deleted_at <= deleted) s.complex->deleted_at = kNoTimestamp;
    }
  }
}

bool row_empty(const RowData& row) {
  if (row.marker.present()) return false;
  for (const auto& s : row.slots) {
    if (s.cell.present()) return false;
    if (s.complex && (!s.complex->elems.empty() || s.complex->deleted_at != kNoTimestamp))
      return false;
  }
  return true;
}

// True if clustering key `ck` lies within `r` (bounds are prefixes).
bool in_range(const ClusteringLess& less, const RangeTombstone& r, const Key& ck) {
  auto cmp_prefix = [&](const Key& bound) {
    Key head(ck.begin(),
             ck.begin() + static_cast<std::ptrdiff_t>(std::min(bound.size(), ck.size())));
    return less.compare(head, bound);
  };
  if (!r.from.empty()) {
    int c = cmp_prefix(r.from);
    if (c < 0 || (c == 0 && !r.from_inclusive)) return false;
  }
  if (!r.to.empty()) {
    int c = cmp_prefix(r.to);
    if (c > 0 || (c == 0 && !r.to_inclusive)) return false;
  }
  return true;
}

bool is_list(const Column& col) {
  return col.type.id == cql::TypeId::kList;
}

}  // namespace

int64_t murmur3_token(cql::BytesView key) {
  constexpr uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
  const std::size_t n = key.size(), nblocks = n / 16;
  auto u8 = [&](std::size_t i) { return static_cast<uint64_t>(std::to_integer<uint8_t>(key[i])); };
  // The tail's bytes are sign-extended: Cassandra reads them as Java bytes.
  auto s8 = [&](std::size_t i) {
    return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(u8(i))));
  };
  auto block = [&](std::size_t at) {
    uint64_t v = 0;
    for (int b = 7; b >= 0; --b) v = (v << 8) | u8(at + static_cast<std::size_t>(b));
    return v;
  };
  uint64_t h1 = 0, h2 = 0;
  for (std::size_t i = 0; i < nblocks; ++i) {
    uint64_t k1 = block(i * 16), k2 = block(i * 16 + 8);
    k1 *= c1, k1 = rotl(k1, 31), k1 *= c2, h1 ^= k1;
    h1 = rotl(h1, 27), h1 += h2, h1 = h1 * 5 + 0x52dce729;
    k2 *= c2, k2 = rotl(k2, 33), k2 *= c1, h2 ^= k2;
    h2 = rotl(h2, 31), h2 += h1, h2 = h2 * 5 + 0x38495ab5;
  }
  const std::size_t tail = nblocks * 16, rest = n & 15;
  uint64_t k1 = 0, k2 = 0;
  for (std::size_t i = rest; i > 8; --i) k2 ^= s8(tail + i - 1) << (8 * (i - 9));
  if (rest > 8) k2 *= c2, k2 = rotl(k2, 33), k2 *= c1, h2 ^= k2;
  for (std::size_t i = std::min<std::size_t>(rest, 8); i > 0; --i)
    k1 ^= s8(tail + i - 1) << (8 * (i - 1));
  if (rest > 0) k1 *= c1, k1 = rotl(k1, 31), k1 *= c2, h1 ^= k1;
  h1 ^= n, h2 ^= n;
  h1 += h2, h2 += h1;
  h1 = fmix(h1), h2 = fmix(h2);
  h1 += h2;
  int64_t token = static_cast<int64_t>(h1);
  return token == INT64_MIN ? INT64_MAX : token;
}

Bytes partition_key_bytes(const std::vector<Bytes>& components) {
  if (components.size() == 1) return components[0];
  Bytes out;
  for (const auto& c : components) {
    out.push_back(static_cast<std::byte>((c.size() >> 8) & 0xff));
    out.push_back(static_cast<std::byte>(c.size() & 0xff));
    out.insert(out.end(), c.begin(), c.end());
    out.push_back(std::byte{0});
  }
  return out;
}

bool ElementLess::operator()(const Bytes& a, const Bytes& b) const {
  if (!type) return compare_unsigned(a, b) < 0;
  return compare_values(a, b, *type) < 0;
}

int ClusteringLess::compare(const Key& a, const Key& b) const {
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto& [type, desc] = (*columns)[i];
    int c = compare_values(a[i], b[i], type);
    if (c != 0) return desc ? -c : c;
  }
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

bool PartitionPos::operator<(const PartitionPos& o) const {
  if (token != o.token) return token < o.token;
  return compare_unsigned(key, o.key) < 0;
}

int Table::index(const std::string& col) const {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i].name == col) return static_cast<int>(i);
  return -1;
}

PartitionPos Table::position_of(const std::vector<Bytes>& pk) {
  PartitionPos pos;
  pos.key = partition_key_bytes(pk);
  pos.token = murmur3_token(pos.key);
  return pos;
}

Table::Partitions::iterator Table::find(const PartitionPos& pos) {
  auto [b, e] = by_token.equal_range(pos.token);
  for (auto it = b; it != e; ++it)
    if (it->second->first.key == pos.key) return it->second;
  return partitions.end();
}

Table::Partitions::const_iterator Table::find(const PartitionPos& pos) const {
  return const_cast<Table*>(this)->find(pos);
}

void Table::clear() {
  by_token.clear();
  partitions.clear();
}

PartitionData& Table::partition(const std::vector<Bytes>& pk) {
  PartitionPos pos = position_of(pk);
  auto it = find(pos);
  if (it == partitions.end()) {
    int64_t token = pos.token;
    it = partitions.emplace(std::move(pos), PartitionData(clustering_less())).first;
    by_token.emplace(token, it);
    it->second.pk = pk;
    it->second.statics.slots.resize(slot_count());
  }
  return it->second;
}

RowData& Table::row(PartitionData& p, const Key& ck) {
  auto it = p.rows.find(ck);
  if (it == p.rows.end()) {
    it = p.rows.emplace(ck, RowData{}).first;
    it->second.slots.resize(slot_count());
  }
  return it->second;
}

Slot& Table::slot(RowData& r, std::size_t col) {
  return r.slots.at(col - key_size());
}

void write_cell(CellData& cell, const std::optional<Bytes>& value, const WriteTime& wt) {
  CellData in = make_cell(value, wt);
  if (newer_than(in, cell)) cell = std::move(in);
}

void write_marker(RowData& row, const WriteTime& wt) {
  CellData in = make_cell(Bytes{}, wt);
  if (newer_than(in, row.marker)) row.marker = std::move(in);
}

void add_counter(CellData& cell, int64_t delta, const WriteTime& wt) {
  int64_t base = 0;
  if (cell.present() && !cell.tombstone && cell.value.size() == 8) {
    for (auto b : cell.value) base = (base << 8) | std::to_integer<uint8_t>(b);
  }
  cell.value =
      be_int(static_cast<int64_t>(static_cast<uint64_t>(base) + static_cast<uint64_t>(delta)), 8);
  cell.tombstone = false;
  cell.ts = std::max(cell.present() ? cell.ts : wt.ts, wt.ts);
}

ComplexData& complex_of(Slot& slot, const Column& col) {
  if (!slot.complex) {
    const cql::DataType* key_type = is_list(col) ? nullptr : &col.type.params.at(0);
    slot.complex = std::make_unique<ComplexData>(ElementLess{key_type});
  }
  return *slot.complex;
}

void write_collection(Slot& slot, const Column& col,
                      const std::vector<std::pair<Bytes, Bytes>>& elems, const WriteTime& wt,
                      bool overwrite) {
  ComplexData& c = complex_of(slot, col);
  if (overwrite) delete_collection(slot, col, wt.ts - 1);
  for (const auto& [key, value] : elems) {
    if (c.deleted_at >= wt.ts) continue;
    write_cell(c.elems[key], value, wt);
  }
}

void delete_element(Slot& slot, const Column& col, const Bytes& key, const WriteTime& wt) {
  ComplexData& c = complex_of(slot, col);
  write_cell(c.elems[key], std::nullopt, wt);
}

void delete_collection(Slot& slot, const Column& col, int64_t ts) {
  ComplexData& c = complex_of(slot, col);
  if (ts <= c.deleted_at) return;
  c.deleted_at = ts;
  for (auto it = c.elems.begin(); it != c.elems.end();)
    it = it->second.ts <= ts ? c.elems.erase(it) : std::next(it);
}

Bytes list_key(bool prepend) {
  // Microseconds since the epoch (×16, plus a sequence) keep appends after every earlier element
  // across restarts; prepends count down from zero.
  static std::atomic<int64_t> last_append{0}, last_prepend{0};
  int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count() *
                16;
  int64_t v;
  if (prepend) {
    int64_t prev = last_prepend.load();
    do {
      v = std::min(-now, prev - 1);
    } while (!last_prepend.compare_exchange_weak(prev, v));
  } else {
    int64_t prev = last_append.load();
    do {
      v = std::max(now, prev + 1);
    } while (!last_append.compare_exchange_weak(prev, v));
  }
  // Offset so that unsigned byte order is numeric order.
  return be_int(static_cast<int64_t>(static_cast<uint64_t>(v) ^ 0x8000000000000000ULL), 8);
}

void delete_row(RowData& row, int64_t ts) {
  if (ts <= row.deleted_at) return;
  row.deleted_at = ts;
  purge_row(row, ts);
}

void delete_partition(Table&, PartitionData& p, int64_t ts) {
  if (ts <= p.deleted_at) return;
  p.deleted_at = ts;
  purge_row(p.statics, ts);
  for (auto it = p.rows.begin(); it != p.rows.end();) {
    purge_row(it->second, ts);
    if (it->second.deleted_at <= ts) it->second.deleted_at = kNoTimestamp;
    it = row_empty(it->second) && it->second.deleted_at == kNoTimestamp ? p.rows.erase(it)
                                                                        : std::next(it);
  }
  std::erase_if(p.ranges, [&](const RangeTombstone& r) { return r.ts <= ts; });
}

void delete_range(Table& t, PartitionData& p, RangeTombstone range) {
  if (range.ts <= p.deleted_at) return;
  ClusteringLess less = t.clustering_less();
  for (auto& [ck, row] : p.rows)
    if (in_range(less, range, ck)) purge_row(row, range.ts);
  p.ranges.push_back(std::move(range));
}

int64_t shadowing(const Table& t, const PartitionData& p, const Key& ck, const RowData& row) {
  int64_t d = std::max(p.deleted_at, row.deleted_at);
  if (!p.ranges.empty()) {
    ClusteringLess less = t.clustering_less();
    for (const auto& r : p.ranges)
      if (r.ts > d && in_range(less, r, ck)) d = r.ts;
  }
  return d;
}

bool row_live(const Table& t, const RowData& row, int64_t deleted, int32_t now) {
  if (row.marker.live(now) && row.marker.ts > deleted) return true;
  for (std::size_t i = 0; i < row.slots.size(); ++i) {
    const Column& col = t.columns[t.key_size() + i];
    if (col.kind == ColumnKind::kStatic) continue;
    const Slot& s = row.slots[i];
    if (s.cell.live(now) && s.cell.ts > deleted) return true;
    if (s.complex) {
      int64_t d = std::max(deleted, s.complex->deleted_at);
      for (const auto& [k, c] : s.complex->elems)
        if (c.live(now) && c.ts > d) return true;
    }
  }
  return false;
}

bool statics_live(const Table& t, const PartitionData& p, int32_t now) {
  for (std::size_t i = 0; i < p.statics.slots.size(); ++i) {
    if (t.columns[t.key_size() + i].kind != ColumnKind::kStatic) continue;
    if (read_slot(t, t.key_size() + i, p.statics, p.deleted_at, now)) return true;
  }
  return false;
}

const CellData* live_cell(const Table& t, std::size_t col, const RowData& row, int64_t deleted,
                          int32_t now) {
  const CellData& c = row.slots.at(col - t.key_size()).cell;
  return c.live(now) && c.ts > deleted ? &c : nullptr;
}

std::vector<std::pair<Bytes, Bytes>> live_elements(const Table& t, std::size_t col,
                                                   const RowData& row, int64_t deleted,
                                                   int32_t now) {
  std::vector<std::pair<Bytes, Bytes>> out;
  const Slot& s = row.slots.at(col - t.key_size());
  if (!s.complex) return out;
  int64_t d = std::max(deleted, s.complex->deleted_at);
  for (const auto& [k, c] : s.complex->elems)
    if (c.live(now) && c.ts > d) out.emplace_back(k, c.value);
  return out;
}

Cell read_slot(const Table& t, std::size_t col, const RowData& row, int64_t deleted, int32_t now) {
  const Column& column = t.columns.at(col);
  if (!column.multi_cell) {
    const CellData* c = live_cell(t, col, row, deleted, now);
    if (!c) return std::nullopt;
    return c->value;
  }
  auto elems = live_elements(t, col, row, deleted, now);
  if (elems.empty()) return std::nullopt;  // an empty collection reads as null
  std::vector<Bytes> flat;
  for (auto& [k, v] : elems) {
    switch (column.type.id) {
      case cql::TypeId::kList:
        flat.push_back(std::move(v));
        break;
      case cql::TypeId::kSet:
        flat.push_back(std::move(k));
        break;
      default:
        flat.push_back(std::move(k));
        flat.push_back(std::move(v));
    }
  }
  return collection_value(flat, elems.size());
}

}  // namespace zdm::testcluster
