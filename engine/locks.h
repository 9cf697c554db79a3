// LockTable: Argo's `synchronization` locks (mutexes and semaphores), shared by every run of one
// dagd. A mutex admits one holder; a semaphore "CONFIGMAP/KEY" as many as its configured limit.
// A holder is a string ("RUN" for a workflow-level lock, "RUN/NODE" for a template's attempt)
// and takes all of its locks at once or none, so two holders never wait on each other.
//
// Pure bookkeeping: no I/O, no clock, not thread-safe (the scheduler uses it on its strand). It
// lives in memory; after a restart the scheduler rebuilds it from the runs' running nodes
// (Hold()).
#ifndef DAGD_ENGINE_LOCKS_H_
#define DAGD_ENGINE_LOCKS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/workflow.h"

namespace dagd::engine {

// "mutex/NAME" or "semaphore/CONFIGMAP/KEY": the keys of a LockTable.
std::vector<std::string> LockKeys(const std::vector<std::string>& mutexes,
                                  const std::vector<std::string>& semaphores);

class LockTable {
 public:
  // `semaphore_limits`: "CONFIGMAP/KEY" → how many may hold it.
  explicit LockTable(std::map<std::string, int64_t> semaphore_limits = {});

  // The first of `locks` that `holder` cannot take now, or "" if it can take them all.
  std::string FirstBusy(const std::string& holder, const std::vector<std::string>& locks) const;
  // Takes every one of `locks` for `holder`, or none of them (false) when one is at its limit.
  // Locks `holder` already holds count as taken. A lock this table cannot grant at all (a
  // semaphore without a limit) is never taken: check Unknown() first.
  bool TryAcquire(const std::string& holder, const std::vector<std::string>& locks);
  // Takes `locks` for `holder` whatever the limits (rebuilding the table after a restart).
  void Hold(const std::string& holder, const std::vector<std::string>& locks);
  // Sets the limit of semaphore "CONFIGMAP/KEY" (a stored ConfigMap's value, read when a run
  // naming it is submitted or restored). Holders over a lowered limit keep what they hold.
  void SetLimit(const std::string& semaphore, int64_t limit) {
    semaphore_limits_[semaphore] = limit;
  }
  // Gives back every lock of `holder`; counts a release if it held any.
  void Release(const std::string& holder);

  // An error message if `lock` can never be granted (a semaphore with no configured limit), else
  // "".
  std::string Unknown(const std::string& lock) const;
  // "mutex deploy (held by RUN/NODE)", "semaphore my-config/template (3/3 held)": why `lock`
  // is not free, for a waiting node's message.
  std::string Describe(const std::string& lock) const;
  // How many releases happened so far: the scheduler wakes waiting runs when it changes.
  int64_t releases() const { return releases_; }

 private:
  int64_t Limit(const std::string& lock) const;

  std::map<std::string, int64_t> semaphore_limits_;
  std::map<std::string, std::set<std::string>> holders_;  // lock → its holders
  std::map<std::string, std::set<std::string>> held_;     // holder → its locks
  int64_t releases_ = 0;
};

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_LOCKS_H_
