#include "engine/locks.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dagd::engine {
namespace {

constexpr char kMutex[] = "mutex/";
constexpr char kSemaphore[] = "semaphore/";

}  // namespace

std::vector<std::string> LockKeys(const std::vector<std::string>& mutexes,
                                  const std::vector<std::string>& semaphores) {
  std::vector<std::string> keys;
  for (const std::string& name : mutexes) keys.push_back(kMutex + name);
  for (const std::string& name : semaphores) keys.push_back(kSemaphore + name);
  return keys;
}

LockTable::LockTable(std::map<std::string, int64_t> semaphore_limits)
    : semaphore_limits_(std::move(semaphore_limits)) {}

int64_t LockTable::Limit(const std::string& lock) const {
  if (absl::StartsWith(lock, kMutex)) return 1;
  auto it = semaphore_limits_.find(lock.substr(sizeof(kSemaphore) - 1));
  return it == semaphore_limits_.end() ? 0 : it->second;
}

std::string LockTable::FirstBusy(const std::string& holder,
                                 const std::vector<std::string>& locks) const {
  for (const std::string& lock : locks) {
    auto it = holders_.find(lock);
    const bool mine = it != holders_.end() && it->second.count(holder) > 0;
    const int64_t held = it == holders_.end() ? 0 : static_cast<int64_t>(it->second.size());
    if (!mine && held >= Limit(lock)) return lock;
  }
  return "";
}

bool LockTable::TryAcquire(const std::string& holder, const std::vector<std::string>& locks) {
  if (!FirstBusy(holder, locks).empty()) return false;
  Hold(holder, locks);
  return true;
}

void LockTable::Hold(const std::string& holder, const std::vector<std::string>& locks) {
  for (const std::string& lock : locks) {
    holders_[lock].insert(holder);
    held_[holder].insert(lock);
  }
}

void LockTable::Release(const std::string& holder) {
  auto it = held_.find(holder);
  if (it == held_.end()) return;
  for (const std::string& lock : it->second) {
    auto holders = holders_.find(lock);
    holders->second.erase(holder);
    if (holders->second.empty()) holders_.erase(holders);
  }
  held_.erase(it);
  ++releases_;
}

std::string LockTable::Unknown(const std::string& lock) const {
  if (Limit(lock) > 0) return "";
  const std::string name = lock.substr(sizeof(kSemaphore) - 1);
  return absl::StrCat("semaphore ", name,
                      " has no limit in dagd's configuration; start dagd with --semaphore ", name,
                      "=N (N: how many may hold it at once)");
}

std::string LockTable::Describe(const std::string& lock) const {
  auto it = holders_.find(lock);
  const int64_t held = it == holders_.end() ? 0 : static_cast<int64_t>(it->second.size());
  if (absl::StartsWith(lock, kMutex)) {
    return absl::StrCat(
        "mutex ", lock.substr(sizeof(kMutex) - 1),
        held == 0 ? std::string() : absl::StrCat(" (held by ", *it->second.begin(), ")"));
  }
  return absl::StrCat("semaphore ", lock.substr(sizeof(kSemaphore) - 1), " (", held, "/",
                      Limit(lock), " held)");
}

}  // namespace dagd::engine
