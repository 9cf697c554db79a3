// MemoCache: Argo's memoization caches (`memoize.cache.configMap.name`), shared by every run of
// one dagd: a cache name and key → the outputs of the node that produced them, and when.
//
// Pure bookkeeping: no I/O, no clock, not thread-safe (the scheduler uses it on its strand). The
// scheduler loads the stored entries at start-up (Load()) and commits what Put() queued
// (TakeWrites()) in the same batch as the node that produced it, so an entry exists exactly when
// its node's success is committed.
#ifndef DAGD_ENGINE_MEMO_H_
#define DAGD_ENGINE_MEMO_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/run_state.h"

namespace dagd::engine {

class MemoCache {
 public:
  struct Entry {
    NodeOutputs outputs;
    int64_t saved_at_ms = 0;
    std::string node;  // "<run>/<node name>" that produced it, for people reading the cache
  };
  struct Write {
    std::string cache;
    std::string key;
    Entry entry;
  };

  // The entry of `key` in `cache` if it is at most `max_age_ms` old at `now_ms` (max_age_ms < 0:
  // any age), else nullptr. Valid until the next Put() or Load().
  const Entry* Find(const std::string& cache, const std::string& key, int64_t now_ms,
                    int64_t max_age_ms) const;
  // Records an entry (replacing one of the same cache and key) and queues it for the store.
  void Put(const std::string& cache, const std::string& key, Entry entry);
  // Records a stored entry; nothing is queued.
  void Load(const std::string& cache, const std::string& key, Entry entry);
  // What Put() queued since the last call, oldest first.
  std::vector<Write> TakeWrites();

  size_t size() const { return entries_.size(); }

 private:
  std::map<std::pair<std::string, std::string>, Entry> entries_;
  std::vector<Write> pending_;
};

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_MEMO_H_
