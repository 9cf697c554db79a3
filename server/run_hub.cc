#include "server/run_hub.h"

namespace dagd::server {

void RunHub::Add(const std::string& run_id, std::shared_ptr<RunWatcher> watcher) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.emplace(run_id, std::move(watcher));
}

void RunHub::Remove(const std::string& run_id, const RunWatcher* watcher) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [begin, end] = watchers_.equal_range(run_id);
  for (auto it = begin; it != end; ++it) {
    if (it->second.get() == watcher) {
      watchers_.erase(it);
      return;
    }
  }
}

void RunHub::OnRunCommitted(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [begin, end] = watchers_.equal_range(run_id);
  for (auto it = begin; it != end; ++it) it->second->Wake();
}

}  // namespace dagd::server
