#include "server/run_service.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/polling_writer.h"
#include "server/workflow_service.h"

namespace dagd::server {
namespace {

constexpr int kPageSize = 256;

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Fills `out` with the stored run and its nodes.
absl::Status ReadRun(storage::Store* store, const std::string& run_id, v1::Run* out) {
  auto run = store->GetRun(run_id);
  if (!run.ok()) return run.status();
  auto nodes = store->GetNodes(run_id);
  if (!nodes.ok()) return nodes.status();
  ToProto(*run, *nodes, out);
  return absl::OkStatus();
}

template <typename Msg>
class FailedStream : public grpc::ServerWriteReactor<Msg> {
 public:
  explicit FailedStream(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

RunServiceImpl::RunServiceImpl(storage::Store* store, scheduler::Scheduler* scheduler, RunHub* hub)
    : store_(store), scheduler_(scheduler), hub_(hub) {}

RunServiceImpl::~RunServiceImpl() { stream_pool_.join(); }

grpc::ServerUnaryReactor* RunServiceImpl::SubmitRun(grpc::CallbackServerContext* context,
                                                    const v1::SubmitRunRequest* request,
                                                    v1::Run* response) {
  scheduler::SubmitRequest submit;
  switch (request->source_case()) {
    case v1::SubmitRunRequest::kWorkflowName: {
      auto stored = store_->GetWorkflow(request->workflow_name(), request->workflow_version());
      if (!stored.ok()) return Done(context, stored.status());
      submit.workflow_yaml = stored->yaml;
      submit.workflow_name = stored->name;
      submit.workflow_version = stored->version;
      submit.bundle_dir = stored->bundle_dir;
      submit.file_name = absl::StrCat(stored->name, "@v", stored->version);
      break;
    }
    case v1::SubmitRunRequest::kSpecYaml:
      if (request->spec_yaml().size() > kMaxSpecBytes) {
        return Done(context, absl::InvalidArgumentError(absl::StrCat(
                                 "spec_yaml: the workflow is ", request->spec_yaml().size(),
                                 " bytes; the limit is ", kMaxSpecBytes)));
      }
      submit.workflow_yaml = request->spec_yaml();
      submit.file_name = request->file_name().empty() ? "<request>" : request->file_name();
      submit.bundle_dir = request->bundle_dir();
      break;
    default:
      return Done(context, absl::InvalidArgumentError(
                               "SubmitRun needs workflow_name (a stored workflow) or spec_yaml"));
  }
  for (const auto& [k, v] : request->parameters()) submit.parameters[k] = v;
  submit.request_id = request->request_id();

  auto* reactor = context->DefaultReactor();
  scheduler_->Submit(std::move(submit),
                     [reactor, response](absl::StatusOr<storage::RunRecord> run) {
                       if (run.ok()) ToProto(*run, {}, response);
                       reactor->Finish(ToGrpcStatus(run.status()));
                     });
  return reactor;
}

grpc::ServerUnaryReactor* RunServiceImpl::GetRun(grpc::CallbackServerContext* context,
                                                 const v1::GetRunRequest* request,
                                                 v1::Run* response) {
  return Done(context, ReadRun(store_, request->run_id(), response));
}

grpc::ServerUnaryReactor* RunServiceImpl::ListRuns(grpc::CallbackServerContext* context,
                                                   const v1::ListRunsRequest* request,
                                                   v1::ListRunsResponse* response) {
  using google::protobuf::util::TimeUtil;
  storage::RunFilter filter;
  filter.workflow_name = request->workflow_name();
  for (int p : request->phases()) {
    engine::NodePhase phase;
    if (!FromProtoPhase(static_cast<v1::Phase>(p), &phase)) {
      return Done(context,
                  absl::InvalidArgumentError(absl::StrCat("phases: ", p, " is not a phase")));
    }
    filter.phases.push_back(phase);
  }
  if (request->has_created_after()) {
    filter.created_after_ms = TimeUtil::TimestampToMilliseconds(request->created_after());
  }
  if (request->has_created_before()) {
    filter.created_before_ms = TimeUtil::TimestampToMilliseconds(request->created_before());
  }
  filter.limit = request->page_size() > 0 ? std::min(request->page_size(), 1000) : 50;
  filter.page_token = request->page_token();
  auto page = store_->ListRuns(filter);
  if (!page.ok()) return Done(context, page.status());
  for (const auto& run : page->runs) ToProto(run, {}, response->add_runs());
  response->set_next_page_token(page->next_page_token);
  return Done(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::RunEvent>* RunServiceImpl::WatchRun(
    grpc::CallbackServerContext* context, const v1::WatchRunRequest* request) {
  const std::string run_id = request->run_id();
  if (auto run = store_->GetRun(run_id); !run.ok()) {
    return new FailedStream<v1::RunEvent>(run.status());
  }
  storage::Store* store = store_;
  auto fetch = [store, run_id](int64_t cursor) -> absl::StatusOr<FetchResult<v1::RunEvent>> {
    FetchResult<v1::RunEvent> page;
    page.cursor = cursor;
    auto events = store->GetEvents(run_id, cursor, kPageSize);
    if (!events.ok()) return events.status();
    for (const auto& e : *events) {
      ToProto(e, &page.messages.emplace_back());
      page.cursor = e.sequence;
      if (page.messages.back().final()) page.end = true;
    }
    if (events->empty()) {
      // Caught up: a finished run whose events were all sent (or skipped by after_sequence).
      auto run = store->GetRun(run_id);
      if (!run.ok()) return run.status();
      if (engine::IsFinal(run->phase) && cursor >= run->last_sequence) page.end = true;
    }
    return page;
  };
  return new PollingWriter<v1::RunEvent>(hub_, &stream_pool_, run_id, request->after_sequence(),
                                         std::move(fetch));
}

grpc::ServerWriteReactor<v1::LogChunk>* RunServiceImpl::GetNodeLogs(
    grpc::CallbackServerContext* context, const v1::GetNodeLogsRequest* request) {
  const std::string run_id = request->run_id();
  auto nodes = store_->GetNodes(run_id);
  if (!nodes.ok()) return new FailedStream<v1::LogChunk>(nodes.status());
  if (nodes->empty()) {
    if (auto run = store_->GetRun(run_id); !run.ok()) {
      return new FailedStream<v1::LogChunk>(run.status());
    }
  }
  std::string node_name;
  std::string known;
  for (const auto& n : *nodes) {
    if (n.name == request->node() || n.display_name == request->node()) node_name = n.name;
    if (n.type == engine::NodeType::kPod) known += (known.empty() ? "" : ", ") + n.display_name;
  }
  if (node_name.empty()) {
    return new FailedStream<v1::LogChunk>(absl::NotFoundError(absl::StrCat(
        "run ", run_id, " has no node \"", request->node(), "\"; its nodes are: ", known)));
  }
  storage::Store* store = store_;
  const int attempt = request->attempt();
  const bool follow = request->follow();
  auto fetch = [store, run_id, node_name, attempt,
                follow](int64_t cursor) -> absl::StatusOr<FetchResult<v1::LogChunk>> {
    FetchResult<v1::LogChunk> page;
    page.cursor = cursor;
    // Read the node's phase before the logs: logs committed with the node's end are then seen.
    bool node_final = true;
    if (follow) {
      auto nodes = store->GetNodes(run_id);
      if (!nodes.ok()) return nodes.status();
      for (const auto& n : *nodes) {
        if (n.name == node_name) node_final = engine::IsFinal(n.phase);
      }
    }
    auto chunks = store->GetLogs(run_id, node_name, attempt, cursor, kPageSize);
    if (!chunks.ok()) return chunks.status();
    for (const auto& c : *chunks) {
      ToProto(c, &page.messages.emplace_back());
      page.cursor = c.sequence;
    }
    if (chunks->size() < static_cast<size_t>(kPageSize) && node_final) page.end = true;
    return page;
  };
  return new PollingWriter<v1::LogChunk>(hub_, &stream_pool_, run_id, 0, std::move(fetch));
}

grpc::ServerUnaryReactor* RunServiceImpl::EndRun(grpc::CallbackServerContext* context,
                                                 const v1::EndRunRequest* request,
                                                 v1::Run* response, bool terminate) {
  auto* reactor = context->DefaultReactor();
  scheduler_->Stop(request->run_id(), request->message(), terminate,
                   [reactor, response](absl::StatusOr<storage::RunRecord> run) {
                     if (!run.ok()) return reactor->Finish(ToGrpcStatus(run.status()));
                     ToProto(*run, {}, response);
                     reactor->Finish(grpc::Status::OK);
                   });
  return reactor;
}

grpc::ServerUnaryReactor* RunServiceImpl::StopRun(grpc::CallbackServerContext* context,
                                                  const v1::EndRunRequest* request,
                                                  v1::Run* response) {
  return EndRun(context, request, response, /*terminate=*/false);
}

grpc::ServerUnaryReactor* RunServiceImpl::TerminateRun(grpc::CallbackServerContext* context,
                                                       const v1::EndRunRequest* request,
                                                       v1::Run* response) {
  return EndRun(context, request, response, /*terminate=*/true);
}

}  // namespace dagd::server
