// RunService (proto/dagd/v1/run.proto) on gRPC's callback API. Submissions and stops go to the
// Scheduler (which commits before it answers); reads come from the Store; WatchRun, GetNodeLogs
// and WatchAnsibleEvents stream committed data through PollingWriter, woken by the RunHub.
#ifndef DAGD_SERVER_RUN_SERVICE_H_
#define DAGD_SERVER_RUN_SERVICE_H_

#include <boost/asio/thread_pool.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "dagd/v1/run.grpc.pb.h"
#include "engine/limits.h"
#include "scheduler/scheduler.h"
#include "server/access.h"
#include "server/run_hub.h"
#include "server/workflow_service.h"
#include "storage/store.h"

namespace dagd::server {

struct RunServiceLimits {
  // Largest spec_yaml of SubmitRun (dagd --max-workflow-bytes).
  int64_t max_workflow_bytes = kMaxSpecBytes;
  // Streams (WatchRun, GetNodeLogs, WatchAnsibleEvents) one principal may have open at once;
  // one more is RESOURCE_EXHAUSTED (dagd --max-watches-per-principal).
  int max_watches_per_principal = 64;
  // The expressions of an inline spec (engine/limits.h).
  engine::ExpressionLimits expressions;
};

class RunServiceImpl final : public v1::RunService::CallbackService {
 public:
  // None owned; all must outlive the service. Uploaded bundles must keep `bundle_limits`.
  RunServiceImpl(storage::Store* store, scheduler::Scheduler* scheduler, RunHub* hub,
                 AccessControl* access, storage::BundleLimits bundle_limits,
                 RunServiceLimits limits = {});
  ~RunServiceImpl() override;

  grpc::ServerUnaryReactor* SubmitRun(grpc::CallbackServerContext* context,
                                      const v1::SubmitRunRequest* request,
                                      v1::Run* response) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* context,
                                   const v1::GetRunRequest* request, v1::Run* response) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* context,
                                     const v1::ListRunsRequest* request,
                                     v1::ListRunsResponse* response) override;
  grpc::ServerWriteReactor<v1::RunEvent>* WatchRun(grpc::CallbackServerContext* context,
                                                   const v1::WatchRunRequest* request) override;
  grpc::ServerUnaryReactor* StopRun(grpc::CallbackServerContext* context,
                                    const v1::EndRunRequest* request, v1::Run* response) override;
  grpc::ServerUnaryReactor* TerminateRun(grpc::CallbackServerContext* context,
                                         const v1::EndRunRequest* request,
                                         v1::Run* response) override;
  grpc::ServerUnaryReactor* ResumeRun(grpc::CallbackServerContext* context,
                                      const v1::ResumeRunRequest* request,
                                      v1::Run* response) override;
  grpc::ServerUnaryReactor* SetNode(grpc::CallbackServerContext* context,
                                    const v1::SetNodeRequest* request, v1::Run* response) override;
  grpc::ServerUnaryReactor* RetryRun(grpc::CallbackServerContext* context,
                                     const v1::RetryRunRequest* request,
                                     v1::Run* response) override;
  grpc::ServerUnaryReactor* ResubmitRun(grpc::CallbackServerContext* context,
                                        const v1::ResubmitRunRequest* request,
                                        v1::Run* response) override;
  grpc::ServerWriteReactor<v1::LogChunk>* GetNodeLogs(
      grpc::CallbackServerContext* context, const v1::GetNodeLogsRequest* request) override;
  grpc::ServerUnaryReactor* ListAnsibleEvents(grpc::CallbackServerContext* context,
                                              const v1::ListAnsibleEventsRequest* request,
                                              v1::ListAnsibleEventsResponse* response) override;
  grpc::ServerWriteReactor<v1::AnsibleEvent>* WatchAnsibleEvents(
      grpc::CallbackServerContext* context, const v1::WatchAnsibleEventsRequest* request) override;

 private:
  grpc::ServerUnaryReactor* EndRun(grpc::CallbackServerContext* context,
                                   const v1::EndRunRequest* request, v1::Run* response,
                                   bool terminate);
  // Admits the call to `method` (its full name) and authorizes it on run `run_id`, in the run's
  // namespace; NotFound for an unknown run once the caller is admitted.
  absl::StatusOr<Caller> AdmitForRun(grpc::CallbackServerContext* context,
                                     const std::string& method, const std::string& run_id);
  // The scheduler's answer with a run record, as the reply of `reactor`; the run is named in
  // the audit record of the call (SubmitRun, ResubmitRun).
  std::function<void(absl::StatusOr<storage::RunRecord>)> AnswerWithNewRun(
      grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor, v1::Run* response);
  // A stream of `caller`'s opens: a lease that counts against max_watches_per_principal until
  // it is destroyed, or RESOURCE_EXHAUSTED naming the limit.
  absl::StatusOr<std::shared_ptr<void>> OpenWatch(const Caller& caller);

  storage::Store* store_;
  scheduler::Scheduler* scheduler_;
  RunHub* hub_;
  AccessControl* access_;
  const storage::BundleLimits bundle_limits_;
  const RunServiceLimits limits_;
  std::mutex watches_mutex_;
  std::map<std::string, int> open_watches_;  // by principal
  boost::asio::thread_pool stream_pool_{2};  // store reads of streaming calls
};

}  // namespace dagd::server

#endif  // DAGD_SERVER_RUN_SERVICE_H_
