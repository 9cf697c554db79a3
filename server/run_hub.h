// RunHub: wakes the streams that watch a run (WatchRun, GetNodeLogs with follow) whenever the
// scheduler has committed a change of that run. It carries no data: a woken stream reads what
// is new from the Store, so a stream never sees anything that is not committed, and a client that
// reconnects with its last sequence number misses nothing.
#ifndef DAGD_SERVER_RUN_HUB_H_
#define DAGD_SERVER_RUN_HUB_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "scheduler/scheduler.h"

namespace dagd::server {

class RunWatcher {
 public:
  virtual ~RunWatcher() = default;
  // Something of the watched run was committed. Must be quick; called with the hub's lock held,
  // so it must not call back into the hub.
  virtual void Wake() = 0;
};

class RunHub : public scheduler::RunListener {
 public:
  void Add(const std::string& run_id, std::shared_ptr<RunWatcher> watcher);
  void Remove(const std::string& run_id, const RunWatcher* watcher);
  void OnRunCommitted(const std::string& run_id) override;

 private:
  std::mutex mu_;
  std::multimap<std::string, std::shared_ptr<RunWatcher>> watchers_;
};

}  // namespace dagd::server

#endif  // DAGD_SERVER_RUN_HUB_H_
