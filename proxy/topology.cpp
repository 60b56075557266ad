#include "proxy/topology.h"
#include "common/util/strings.h"

#include <arpa/inet.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace zdm::proxy {

using util::lower;

using cql::Bytes;
using cql::ColumnSpec;
using cql::DataType;
using cql::TypeId;

std::vector<std::string> virtual_tokens(int i, int n, int t) {
  std::vector<std::string> out;
  unsigned __int128 ring = static_cast<unsigned __int128>(1) << 64;
  auto step = static_cast<uint64_t>(ring / static_cast<unsigned>(t * n));
  for (int k = 0; k < t; ++k) {
    unsigned __int128 pos = static_cast<unsigned __int128>(step) * static_cast<unsigned>(k * n + i);
    auto token = static_cast<int64_t>(static_cast<uint64_t>(pos) ^ (1ull << 63));  // − 2^63
    out.push_back(std::to_string(token));
  }
  return out;
}

Bytes inet_bytes(const std::string& ip) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1) {
    return Bytes(reinterpret_cast<std::byte*>(buf), reinterpret_cast<std::byte*>(buf) + 4);
  }
  if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) {
    return Bytes(reinterpret_cast<std::byte*>(buf), reinterpret_cast<std::byte*>(buf) + 16);
  }
  throw std::invalid_argument("not an IP address: '" + ip + "'");
}

Bytes virtual_host_id(const std::string& ip) {
  Bytes addr = inet_bytes(ip);
  unsigned char name[16] = {0};
  if (addr.size() == 4) {
    name[10] = 0xff;
    name[11] = 0xff;
    for (int k = 0; k < 4; ++k) name[12 + k] = std::to_integer<unsigned char>(addr[k]);
  } else {
    for (int k = 0; k < 16; ++k) name[k] = std::to_integer<unsigned char>(addr[k]);
  }
  unsigned char input[32] = {0};  // nil namespace (16 zero bytes) + name
  for (int k = 0; k < 16; ++k) input[16 + k] = name[k];
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(input, sizeof input, digest);
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x50);
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);
  return Bytes(reinterpret_cast<std::byte*>(digest), reinterpret_cast<std::byte*>(digest) + 16);
}

namespace {

Bytes text_set(const std::vector<std::string>& items) {
  Bytes out;
  cql::Writer w(out);
  w.write_int(static_cast<int32_t>(items.size()));
  for (const auto& s : items) w.write_bytes(cql::BytesView(cql::to_bytes(s)));
  return out;
}

Bytes int_bytes(int32_t v) {
  Bytes out;
  cql::Writer(out).write_int(v);
  return out;
}

struct Selector {
  std::string name;   // column name, or "count(*)"
  std::string alias;  // output name
};

std::string unquote(const std::string& s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return lower(s);
}

std::vector<Selector> parse_selectors(const std::vector<std::string>& raw) {
  std::vector<Selector> out;
  for (const auto& r : raw) {
    std::string s = r;
    std::string alias;
    // "expr AS alias" (case-insensitive AS, surrounded by whitespace)
    std::string l = lower(s);
    auto as = l.rfind(" as ");
    if (as != std::string::npos) {
      alias = s.substr(as + 4);
      s = s.substr(0, as);
      auto e = s.find_last_not_of(" \t\r\n");
      s = s.substr(0, e + 1);
      auto b = alias.find_first_not_of(" \t\r\n");
      alias = alias.substr(b);
    }
    std::string compact;
    for (char c : lower(s))
      if (!std::isspace(static_cast<unsigned char>(c))) compact += c;
    Selector sel;
    if (compact == "count(*)" || compact == "count(1)") {
      sel.name = "count(*)";
      sel.alias = alias.empty() ? "count" : unquote(alias);
    } else {
      sel.name = unquote(s);
      sel.alias = alias.empty() ? sel.name : unquote(alias);
    }
    out.push_back(sel);
  }
  return out;
}

const std::optional<Bytes>* local_value(const SystemSnapshot& snap, const std::string& name) {
  const auto& cols = snap.local.metadata.columns;
  if (snap.local.rows.empty()) return nullptr;
  for (std::size_t i = 0; i < cols.size(); ++i)
    if (cols[i].name == name) return &snap.local.rows[0][i];
  return nullptr;
}

std::vector<ColumnSpec> default_peers_columns(bool v2) {
  auto col = [](const char* n, TypeId id) {
    return ColumnSpec{"system", "peers", n, DataType::of(id)};
  };
  DataType tokens{TypeId::kSet, {}, {DataType::of(TypeId::kVarchar)}, {}, {}, {}};
  if (v2) {
    // system.peers_v2 of Cassandra 4 (ports alongside addresses).
    return {
        col("peer", TypeId::kInet),           col("peer_port", TypeId::kInt),
        col("data_center", TypeId::kVarchar), col("host_id", TypeId::kUuid),
        col("native_address", TypeId::kInet), col("native_port", TypeId::kInt),
        col("preferred_ip", TypeId::kInet),   col("preferred_port", TypeId::kInt),
        col("rack", TypeId::kVarchar),        col("release_version", TypeId::kVarchar),
        col("schema_version", TypeId::kUuid), ColumnSpec{"system", "peers_v2", "tokens", tokens}};
  }
  return {col("peer", TypeId::kInet),
          col("data_center", TypeId::kVarchar),
          col("host_id", TypeId::kUuid),
          col("preferred_ip", TypeId::kInet),
          col("rack", TypeId::kVarchar),
          col("release_version", TypeId::kVarchar),
          col("rpc_address", TypeId::kInet),
          col("schema_version", TypeId::kUuid),
          ColumnSpec{"system", "peers", "tokens", tokens}};
}

// The value of column `name` for virtual host `host` (an index into topology.addresses).
std::optional<Bytes> host_value(const std::string& name, int host, bool is_local,
                                const SystemSnapshot& snap, const VirtualTopology& topo) {
  const std::string& ip = topo.addresses.at(static_cast<std::size_t>(host));
  if (name == "key" && is_local) return cql::to_bytes("local");
  if (name == "broadcast_address" || name == "listen_address" || name == "rpc_address" ||
      name == "peer" || name == "preferred_ip" || name == "native_address" ||
      name == "native_transport_address")
    return inet_bytes(ip);
  if (name == "host_id") return virtual_host_id(ip);
  if (name == "rack") return cql::to_bytes("rack0");
  if (name == "tokens")
    return text_set(virtual_tokens(host, static_cast<int>(topo.addresses.size()), topo.num_tokens));
  if (name == "native_transport_port" || name == "native_port" ||
      name == "native_transport_port_ssl")
    return int_bytes(topo.port);
  if (name == "truncated_at") return std::nullopt;
  if (name == "peer_port") return int_bytes(7000);
  if (name == "preferred_port") return std::nullopt;
  if (name == "bootstrapped") return cql::to_bytes("COMPLETED");
  if (const auto* v = local_value(snap, name)) return *v;
  return std::nullopt;
}

}  // namespace

std::optional<SystemFilter> parse_system_filter(std::string_view cql) {
  std::string l;
  l.reserve(cql.size());
  for (char c : cql) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t w = std::string::npos;
  bool quoted = false;
  for (std::size_t i = 0; i + 5 <= l.size(); ++i) {  // "where" outside string literals
    if (l[i] == '\'') quoted = !quoted;
    if (!quoted && l.compare(i, 5, "where") == 0 &&
        (i == 0 || std::isspace(static_cast<unsigned char>(l[i - 1]))) &&
        (i + 5 == l.size() || std::isspace(static_cast<unsigned char>(l[i + 5])))) {
      w = i;
      break;
    }
  }
  if (w == std::string::npos) return std::nullopt;
  std::string rest(cql.substr(w + 5));
  auto eq = rest.find('=');
  if (eq == std::string::npos)
    throw std::invalid_argument("Only EQ relations are supported on system tables by zdm-proxy");
  auto trim = [](std::string x) {
    auto b = x.find_first_not_of(" \t\r\n;");
    auto e = x.find_last_not_of(" \t\r\n;");
    return b == std::string::npos ? std::string() : x.substr(b, e - b + 1);
  };
  SystemFilter f;
  f.column = unquote(trim(rest.substr(0, eq)));
  std::string value = trim(rest.substr(eq + 1));
  // Anything after the value (LIMIT, ALLOW FILTERING) does not change these one-row answers.
  if (value.rfind('\'', 0) != 0) value = value.substr(0, value.find_first_of(" \t\r\n"));
  if (value == "?" || (!value.empty() && value[0] == ':')) {
    f.marker = 0;
  } else if (value.size() >= 2 && value.front() == '\'') {
    auto end = value.find('\'', 1);
    f.literal = value.substr(1, end == std::string::npos ? std::string::npos : end - 1);
  } else {
    f.literal = value;
  }
  return f;
}

Bytes filter_value(const std::string& column, const std::string& literal) {
  if (column == "peer" || column == "native_address" || column == "rpc_address" ||
      column == "broadcast_address" || column == "listen_address")
    return inet_bytes(literal);
  return cql::to_bytes(literal);
}

std::variant<cql::RowsResult, cql::ErrorMsg> answer_system_select(
    LocalTable table, const cql::StatementInfo& info, const SystemSnapshot& snap,
    const VirtualTopology& topo, const std::string& filter_column,
    const std::optional<Bytes>& filter_value) {
  const bool is_local = table == LocalTable::kSystemLocal;
  const bool v2 = table == LocalTable::kSystemPeersV2;
  const char* table_name = is_local ? "local" : v2 ? "peers_v2" : "peers";
  std::vector<ColumnSpec> all =
      is_local ? snap.local.metadata.columns
               : (v2 ? default_peers_columns(true) : snap.peers_metadata.columns);
  if (!is_local && all.empty()) all = default_peers_columns(false);
  for (auto& c : all) {
    c.keyspace = "system";
    c.table = table_name;
  }

  std::vector<int> hosts;
  if (is_local) {
    hosts.push_back(topo.index);
  } else {
    for (int h = 0; h < static_cast<int>(topo.addresses.size()); ++h)
      if (h != topo.index &&
          std::find(topo.leaving.begin(), topo.leaving.end(),
                    topo.addresses[static_cast<std::size_t>(h)]) == topo.leaving.end())
        hosts.push_back(h);
  }
  if (!filter_column.empty() && filter_value) {
    std::erase_if(hosts, [&](int h) {
      return host_value(filter_column, h, is_local, snap, topo) != *filter_value;
    });
  }

  cql::RowsResult out;
  auto sels =
      parse_selectors(info.selectors.empty() ? std::vector<std::string>{"*"} : info.selectors);
  bool count_only = sels.size() == 1 && sels[0].name == "count(*)";
  if (count_only) {
    out.metadata.columns.push_back(
        ColumnSpec{"system", table_name, sels[0].alias, DataType::of(TypeId::kBigint)});
    Bytes n;
    cql::Writer(n).write_long(static_cast<int64_t>(hosts.size()));
    out.rows.push_back({n});
    out.metadata.column_count = 1;
    return out;
  }
  std::vector<std::string> names;
  for (const auto& s : sels) {
    if (s.name == "*") {
      for (const auto& c : all) {
        out.metadata.columns.push_back(c);
        names.push_back(c.name);
      }
      continue;
    }
    const ColumnSpec* found = nullptr;
    for (const auto& c : all)
      if (c.name == s.name) found = &c;
    if (!found)
      return cql::ErrorMsg{cql::ErrorCode::kInvalid, "Undefined column name " + s.name, {}};
    ColumnSpec c = *found;
    c.name = s.alias;
    out.metadata.columns.push_back(c);
    names.push_back(s.name);
  }
  out.metadata.column_count = static_cast<int32_t>(out.metadata.columns.size());
  for (int h : hosts) {
    cql::Row row;
    for (const auto& n : names) row.push_back(host_value(n, h, is_local, snap, topo));
    out.rows.push_back(std::move(row));
  }
  return out;
}

}  // namespace zdm::proxy
