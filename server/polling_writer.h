// PollingWriter<Msg>: a server-streaming reactor (gRPC callback API) that sends what a fetch
// function reads from the Store, page by page, and waits for a RunHub wake-up when it has caught
// up. Used by WatchRun (events) and GetNodeLogs (log chunks).
//
// Threads: fetches run on a thread pool owned by the service, never on gRPC's or the scheduler's
// threads. One fetch at a time per stream. The reactor deletes itself in OnDone.
#ifndef DAGD_SERVER_POLLING_WRITER_H_
#define DAGD_SERVER_POLLING_WRITER_H_

#include <grpcpp/grpcpp.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/convert.h"
#include "server/run_hub.h"

namespace dagd::server {

template <typename Msg>
struct FetchResult {
  std::vector<Msg> messages;
  int64_t cursor = 0;  // where the next fetch starts
  bool end = false;    // the stream is complete once `messages` are sent
};

template <typename Msg>
class PollingWriter : public grpc::ServerWriteReactor<Msg> {
 public:
  using FetchFn = std::function<absl::StatusOr<FetchResult<Msg>>(int64_t cursor)>;

  // Starts streaming at once. `hub` and `pool` must outlive every stream.
  PollingWriter(RunHub* hub, boost::asio::thread_pool* pool, std::string run_id, int64_t cursor,
                FetchFn fetch)
      : core_(std::make_shared<Core>()) {
    core_->reactor = this;
    core_->hub = hub;
    core_->pool = pool;
    core_->run_id = std::move(run_id);
    core_->cursor = cursor;
    core_->fetch = std::move(fetch);
    hub->Add(core_->run_id, core_);
    Core::Schedule(core_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      core_->writing = false;
      core_->queue.pop_front();
      if (!ok) core_->cancelled = true;
    }
    Core::Schedule(core_);
  }

  void OnCancel() override {
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      core_->cancelled = true;
    }
    Core::Schedule(core_);
  }

  void OnDone() override {
    core_->hub->Remove(core_->run_id, core_.get());
    delete this;
  }

 private:
  struct Core : RunWatcher, std::enable_shared_from_this<Core> {
    std::mutex mu;
    PollingWriter* reactor = nullptr;  // valid until `finished` is set
    RunHub* hub = nullptr;
    boost::asio::thread_pool* pool = nullptr;
    std::string run_id;
    FetchFn fetch;
    int64_t cursor = 0;
    std::deque<Msg> queue;
    bool end_seen = false;
    bool writing = false;
    bool cancelled = false;
    bool finished = false;
    bool pumping = false;
    bool repump = false;

    void Wake() override { Schedule(this->shared_from_this()); }

    static void Schedule(const std::shared_ptr<Core>& core) {
      {
        std::lock_guard<std::mutex> lock(core->mu);
        if (core->finished) return;
        if (core->pumping) {
          core->repump = true;
          return;
        }
        core->pumping = true;
      }
      boost::asio::post(*core->pool, [core] { Pump(core); });
    }

    static void Pump(const std::shared_ptr<Core>& core) {
      std::unique_lock<std::mutex> lock(core->mu);
      for (;;) {
        core->repump = false;
        if (core->finished || core->writing) break;
        if (core->cancelled) {
          core->finished = true;
          lock.unlock();
          core->reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
          return;
        }
        if (core->queue.empty() && !core->end_seen) {
          const int64_t cursor = core->cursor;
          lock.unlock();
          absl::StatusOr<FetchResult<Msg>> page = core->fetch(cursor);
          lock.lock();
          if (!page.ok()) {
            core->finished = true;
            lock.unlock();
            core->reactor->Finish(ToGrpcStatus(page.status()));
            return;
          }
          core->cursor = page->cursor;
          core->end_seen = page->end;
          for (Msg& m : page->messages) core->queue.push_back(std::move(m));
        }
        if (!core->queue.empty()) {
          core->writing = true;
          const Msg* next = &core->queue.front();
          PollingWriter* reactor = core->reactor;
          core->pumping = false;
          lock.unlock();
          reactor->StartWrite(next);
          return;
        }
        if (core->end_seen) {
          core->finished = true;
          lock.unlock();
          core->reactor->Finish(grpc::Status::OK);
          return;
        }
        if (!core->repump) break;  // caught up: wait for a wake-up
      }
      core->pumping = false;
    }
  };

  std::shared_ptr<Core> core_;
};

}  // namespace dagd::server

#endif  // DAGD_SERVER_POLLING_WRITER_H_
