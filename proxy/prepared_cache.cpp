#include "proxy/prepared_cache.h"

#include <chrono>
#include <mutex>

namespace zdm::proxy {

namespace {
// The LRU clock: milliseconds. An entry records its last use at most once a second, so a hot
// statement does not write a shared cache line on every EXECUTE.
uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace

std::size_t PreparedCache::put(PreparedEntry& entry) {
  std::unique_lock lock(mu_);
  std::string ok = key(entry.origin_id);
  std::size_t evicted = 0;
  if (!entries_.count(ok) && entries_.size() >= capacity_) {
    // Full: the least recently used goes (a scan, only when a new statement arrives).
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->second->last_used.load(std::memory_order_relaxed) <
          oldest->second->last_used.load(std::memory_order_relaxed))
        oldest = it;
    by_target_.erase(key(oldest->second->target_id));
    entries_.erase(oldest);
    evicted = 1;
  }
  auto e = std::make_shared<PreparedEntry>();
  e->origin_id = std::move(entry.origin_id);
  e->target_id = std::move(entry.target_id);
  e->origin_result_metadata_id = std::move(entry.origin_result_metadata_id);
  e->target_result_metadata_id = std::move(entry.target_result_metadata_id);
  e->decision = entry.decision;
  e->query = std::move(entry.query);
  e->keyspace = std::move(entry.keyspace);
  e->plan = std::move(entry.plan);
  e->pk_indices = std::move(entry.pk_indices);
  e->last_used = now_ms();
  by_target_[key(e->target_id)] = ok;
  entries_[ok] = std::move(e);
  return evicted;
}

std::shared_ptr<const PreparedEntry> PreparedCache::by_origin_id(cql::BytesView id) const {
  std::shared_lock lock(mu_);
  auto it = entries_.find(view(id));
  if (it == entries_.end()) return nullptr;
  const uint64_t now = now_ms();
  if (now - it->second->last_used.load(std::memory_order_relaxed) >= 1000)
    it->second->last_used.store(now, std::memory_order_relaxed);
  return it->second;
}

std::optional<cql::Bytes> PreparedCache::origin_id_for_target(cql::BytesView target_id) const {
  std::shared_lock lock(mu_);
  auto it = by_target_.find(view(target_id));
  if (it == by_target_.end()) return std::nullopt;
  const auto* p = reinterpret_cast<const std::byte*>(it->second.data());
  return cql::Bytes(p, p + it->second.size());
}

std::size_t PreparedCache::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

void PreparedCache::put_local(cql::BytesView id, LocalStatement s) {
  std::unique_lock lock(mu_);
  if (local_.size() >= capacity_) local_.clear();  // a few dozen in practice
  local_[key(id)] = std::make_shared<const LocalStatement>(std::move(s));
}

std::shared_ptr<const LocalStatement> PreparedCache::local(cql::BytesView id) const {
  std::shared_lock lock(mu_);
  auto it = local_.find(view(id));
  return it == local_.end() ? nullptr : it->second;
}

}  // namespace zdm::proxy
