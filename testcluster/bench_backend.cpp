#include "testcluster/bench_backend.h"

#include <regex>

#include "common/cql/version.h"
#include "common/util/strings.h"

namespace zdm::testcluster {

using util::lower;

namespace {

uint32_t be(const std::byte* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | std::to_integer<uint32_t>(p[i]);
  return v;
}

void append_be32(cql::Bytes& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::byte>((v >> s) & 0xff));
}

}  // namespace

void BenchBackend::learn(const std::string& query, const cql::ResultMsg& result, uint8_t version) {
  const auto* p = std::get_if<cql::PreparedResult>(&result.body);
  if (!p || p->metadata.columns.empty()) return;
  static const std::regex select_re(
      R"(^\s*select\s+(\w+)\s+from\s+[\w.]+\s+where\s+(\w+)\s*=\s*\?\s*;?\s*$)", std::regex::icase);
  static const std::regex insert_re(
      R"(^\s*insert\s+into\s+[\w.]+\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)\s*values\s*\(\s*\?\s*,\s*\?\s*\)\s*;?\s*$)",
      std::regex::icase);
  std::smatch m;
  const auto& spec = p->metadata.columns.front();
  const std::string table = spec.keyspace + "." + spec.table + ".";
  Statement s;
  if (std::regex_match(query, m, select_re)) {
    if (p->metadata.columns.size() != 1 || p->result_metadata.columns.size() != 1 ||
        lower(m[1]) == lower(m[2]))
      return;
    s.rows = &tables_[table + lower(m[1])];
    cql::Writer w(s.metadata);
    p->result_metadata.encode(w, version);
  } else if (std::regex_match(query, m, insert_re)) {
    if (p->metadata.columns.size() != 2 || p->metadata.pk_indices.size() != 1) return;
    s.write = true;
    s.key_index = p->metadata.pk_indices.front();
    s.rows = &tables_[table + lower(s.key_index == 0 ? m[2] : m[1])];
  } else {
    return;
  }
  statements_[cql::to_string(p->id)] = std::move(s);
}

bool BenchBackend::execute(uint8_t version, int16_t stream, cql::BytesView body, cql::Bytes& out,
                           cql::Compression compression) {
  // EXECUTE (v4 §4.1.6): [short bytes id] ([short bytes result_metadata_id] v5) <consistency>
  // <flags> [short n] n × [value] ...
  const std::byte* p = body.data();
  const std::byte* end = p + body.size();
  if (end - p < 2) return false;
  uint32_t id_len = be(p, 2);
  if (static_cast<std::size_t>(end - p) < 2 + id_len) return false;
  key_.assign(reinterpret_cast<const char*>(p + 2), id_len);
  auto it = statements_.find(key_);
  if (it == statements_.end()) return false;
  const Statement& s = it->second;
  p += 2 + id_len;
  if (cql::uses_result_metadata_id(version)) {
    if (end - p < 2) return false;
    p += 2 + be(p, 2);
  }
  const int flag_size = cql::uses_int_query_flags(version) ? 4 : 1;
  if (end - p < 2 + flag_size) return false;
  p += 2;  // consistency
  uint32_t flags = be(p, flag_size);
  p += flag_size;
  if (!(flags & cql::query_flag::kValues) || (flags & cql::query_flag::kNamesForValues))
    return false;
  if (end - p < 2) return false;
  uint32_t n = be(p, 2);
  p += 2;
  if (n != (s.write ? 2u : 1u)) return false;
  const std::byte* value[2] = {nullptr, nullptr};
  int32_t len[2] = {0, 0};
  for (uint32_t i = 0; i < n; ++i) {
    if (end - p < 4) return false;
    len[i] = static_cast<int32_t>(be(p, 4));
    p += 4;
    if (len[i] < 0) return false;  // null or unset: the store's rules apply
    if (end - p < len[i]) return false;
    value[i] = p;
    p += len[i];
  }
  const int k = s.write ? s.key_index : 0;
  key_.assign(reinterpret_cast<const char*>(value[k]), static_cast<std::size_t>(len[k]));

  // The answer is built in `out`, or first in plain_ when its body is to be compressed.
  cql::Bytes& dst = compression == cql::Compression::kNone ? out : plain_;
  if (&dst == &plain_) plain_.clear();
  const std::size_t at = dst.size();
  dst.resize(at + cql::kHeaderSize);
  if (s.write) {
    const int v = 1 - k;
    auto row = s.rows->try_emplace(key_).first;  // the key is copied only when new
    row->second.assign(value[v], value[v] + len[v]);
    append_be32(dst, static_cast<uint32_t>(cql::ResultKind::kVoid));
  } else {
    append_be32(dst, static_cast<uint32_t>(cql::ResultKind::kRows));
    if (flags & cql::query_flag::kSkipMetadata) {
      append_be32(dst, cql::rows_flag::kNoMetadata);
      append_be32(dst, 1);  // column count
    } else {
      dst.insert(dst.end(), s.metadata.begin(), s.metadata.end());
    }
    auto row = s.rows->find(key_);
    append_be32(dst, row == s.rows->end() ? 0 : 1);
    if (row != s.rows->end()) {
      append_be32(dst, static_cast<uint32_t>(row->second.size()));
      dst.insert(dst.end(), row->second.begin(), row->second.end());
    }
  }
  cql::Header h{version,
                true,
                0,
                stream,
                cql::Opcode::kResult,
                static_cast<uint32_t>(dst.size() - at - cql::kHeaderSize)};
  if (compression == cql::Compression::kNone) {
    cql::encode_header(h, out.data() + at);
    return true;
  }
  // v4 §5: the body compressed, the header flagged; LZ4 straight into `out`.
  const cql::BytesView plain(plain_.data() + cql::kHeaderSize, plain_.size() - cql::kHeaderSize);
  const std::size_t head = out.size();
  h.flags = cql::flag::kCompression;
  if (compression == cql::Compression::kLz4) {
    out.resize(head + cql::kHeaderSize + 4);
    for (int i = 0; i < 4; ++i)
      out[head + cql::kHeaderSize + static_cast<std::size_t>(i)] =
          static_cast<std::byte>((plain.size() >> (24 - 8 * i)) & 0xff);
    h.length = static_cast<uint32_t>(4 + cql::lz4_compress_block(plain, out));
  } else {
    cql::Bytes packed = cql::compress_body(compression, plain);
    out.resize(head + cql::kHeaderSize);
    out.insert(out.end(), packed.begin(), packed.end());
    h.length = static_cast<uint32_t>(packed.size());
  }
  cql::encode_header(h, out.data() + head);
  return true;
}

}  // namespace zdm::testcluster
