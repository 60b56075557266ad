// The prepared-statement cache shared by all client connections (ZDM's is datastax/zdm-proxy
// proxy/pkg/zdmproxy/pscache.go): clients only ever see origin prepared ids; EXECUTE and BATCH sent
// to target carry the target's id. Bounded (ZDM's is not): the least recently used statement is
// evicted when it is full; a client EXECUTEing an evicted id gets UNPREPARED and prepares it again,
// as with a Cassandra node. Also holds the statements on system.local/peers the proxy answers
// itself (prepared locally, id = md5(query + keyspace) as ZDM does).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/cql/classifier.h"
#include "common/cql/frame.h"
#include "proxy/rewrite.h"
#include "proxy/router.h"

namespace zdm::proxy {

struct PreparedEntry {
  cql::Bytes origin_id;
  cql::Bytes target_id;
  cql::Bytes origin_result_metadata_id, target_result_metadata_id;  // v5, DSE_V2
  Decision decision;  // routing of EXECUTEs of this statement
  std::string query;  // as the clusters prepared it (generated calls already markers)
  std::string keyspace;
  WritePlan plan;                              // how EXECUTEs of a write are completed
  std::vector<uint16_t> pk_indices;            // bind markers of the partition key (v4+)
  mutable std::atomic<uint64_t> last_used{0};  // LRU clock: steady milliseconds
};

/// A statement on system.local/peers/peers_v2 prepared by the proxy itself.
struct LocalStatement {
  LocalTable table = LocalTable::kNone;
  cql::StatementInfo info;
  std::string query;
};

class PreparedCache {
 public:
  /// `capacity`: statements kept (at least 1).
  explicit PreparedCache(std::size_t capacity = 10000) : capacity_(capacity ? capacity : 1) {}

  /// Adds or replaces; evicts the least recently used entry when full. Returns how many were
  /// evicted (0 or 1).
  std::size_t put(PreparedEntry& entry);  // moves from entry
  /// The entry of an origin id, marked as used; null if unknown (or evicted).
  std::shared_ptr<const PreparedEntry> by_origin_id(cql::BytesView id) const;
  /// The origin id for a target id (to rewrite UNPREPARED from target).
  std::optional<cql::Bytes> origin_id_for_target(cql::BytesView target_id) const;
  std::size_t size() const;
  std::size_t capacity() const { return capacity_; }

  void put_local(cql::BytesView id, LocalStatement s);
  std::shared_ptr<const LocalStatement> local(cql::BytesView id) const;

 private:
  static std::string key(cql::BytesView id) { return std::string(view(id)); }
  /// The id's bytes as a lookup key without a copy (heterogeneous lookup: no allocation per
  /// EXECUTE).
  static std::string_view view(cql::BytesView id) {
    return {reinterpret_cast<const char*>(id.data()), id.size()};
  }
  struct IdHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <class V>
  using IdMap = std::unordered_map<std::string, V, IdHash, std::equal_to<>>;
  const std::size_t capacity_;
  mutable std::shared_mutex mu_;
  IdMap<std::shared_ptr<PreparedEntry>> entries_;
  IdMap<std::string> by_target_;
  IdMap<std::shared_ptr<const LocalStatement>> local_;
};

}  // namespace zdm::proxy
