#include "engine/memo.h"

namespace dagd::engine {

const MemoCache::Entry* MemoCache::Find(const std::string& cache, const std::string& key,
                                        int64_t now_ms, int64_t max_age_ms) const {
  auto it = entries_.find({cache, key});
  if (it == entries_.end()) return nullptr;
  if (max_age_ms >= 0 && now_ms - it->second.saved_at_ms > max_age_ms) return nullptr;
  return &it->second;
}

void MemoCache::Put(const std::string& cache, const std::string& key, Entry entry) {
  pending_.push_back({cache, key, entry});
  entries_[{cache, key}] = std::move(entry);
}

void MemoCache::Load(const std::string& cache, const std::string& key, Entry entry) {
  entries_[{cache, key}] = std::move(entry);
}

std::vector<MemoCache::Write> MemoCache::TakeWrites() {
  std::vector<Write> writes;
  writes.swap(pending_);
  return writes;
}

}  // namespace dagd::engine
