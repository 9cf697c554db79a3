#include "server/run_service.h"

#include <google/protobuf/util/time_util.h>

#include <functional>
#include <optional>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "engine/parser.h"
#include "server/bundle_check.h"
#include "server/convert.h"
#include "server/polling_writer.h"
#include "server/template_library.h"
#include "server/workflow_service.h"

namespace dagd::server {
namespace {

constexpr int kPageSize = 256;

// The scheduler's answer with a run record, as the reply `response` of `reactor`.
std::function<void(absl::StatusOr<storage::RunRecord>)> AnswerWithRun(
    grpc::ServerUnaryReactor* reactor, v1::Run* response) {
  return [reactor, response](absl::StatusOr<storage::RunRecord> run) {
    if (run.ok()) ToProto(*run, {}, response);
    reactor->Finish(ToGrpcStatus(run.status()));
  };
}

// Label keys and values that a selector can name: Kubernetes' characters, no ',', '=' or '!'.
bool IsLabelKey(absl::string_view key) {
  return !key.empty() && key.size() <= 253 &&
         key.find_first_not_of(
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-") ==
             absl::string_view::npos;
}
bool IsLabelValue(absl::string_view value) {
  return value.size() <= 63 &&
         value.find_first_not_of(
             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
             absl::string_view::npos;
}

// "k=v,k2!=v2,k3" (ListRunsRequest.label_selector) as storage requirements.
absl::StatusOr<std::vector<storage::LabelRequirement>> ParseLabelSelector(
    absl::string_view selector) {
  std::vector<storage::LabelRequirement> requirements;
  if (absl::StripAsciiWhitespace(selector).empty()) return requirements;
  for (absl::string_view part : absl::StrSplit(selector, ',')) {
    part = absl::StripAsciiWhitespace(part);
    storage::LabelRequirement requirement;
    absl::string_view key = part, value;
    if (size_t pos = part.find("!="); pos != absl::string_view::npos) {
      requirement.op = storage::LabelRequirement::Op::kNotEquals;
      key = part.substr(0, pos);
      value = part.substr(pos + 2);
    } else if (pos = part.find("=="); pos != absl::string_view::npos) {
      key = part.substr(0, pos);
      value = part.substr(pos + 2);
    } else if (pos = part.find('='); pos != absl::string_view::npos) {
      key = part.substr(0, pos);
      value = part.substr(pos + 1);
    } else {
      requirement.op = storage::LabelRequirement::Op::kExists;
    }
    key = absl::StripAsciiWhitespace(key);
    value = absl::StripAsciiWhitespace(value);
    if (!IsLabelKey(key) || !IsLabelValue(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("label_selector: \"", part,
                       "\" is not key=value, key!=value or key (keys of [A-Za-z0-9._/-], values of "
                       "[A-Za-z0-9._-])"));
    }
    requirement.key = std::string(key);
    requirement.value = std::string(value);
    requirements.push_back(std::move(requirement));
  }
  return requirements;
}

// ListRunsRequest.order_by into *filter: "created", "finished", "duration", "-" for descending.
absl::Status ParseOrderBy(absl::string_view order_by, storage::RunFilter* filter) {
  order_by = absl::StripAsciiWhitespace(order_by);
  if (order_by.empty()) order_by = "-created";
  filter->descending = absl::ConsumePrefix(&order_by, "-");
  if (order_by == "created") {
    filter->order = storage::RunOrder::kCreated;
  } else if (order_by == "finished") {
    filter->order = storage::RunOrder::kFinished;
  } else if (order_by == "duration") {
    filter->order = storage::RunOrder::kDuration;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("order_by: \"", order_by,
                     "\" is not created, finished or duration (\"-\" prefix: descending)"));
  }
  return absl::OkStatus();
}

// Fills `out` with the stored run, its nodes and their Ansible recaps.
absl::Status ReadRun(storage::Store* store, const std::string& run_id, v1::Run* out) {
  auto run = store->GetRun(run_id);
  if (!run.ok()) return run.status();
  auto nodes = store->GetNodes(run_id);
  if (!nodes.ok()) return nodes.status();
  ToProto(*run, *nodes, out);
  out->set_spec_yaml(run->workflow_yaml);
  storage::AnsibleEventFilter stats;
  stats.kind = "stats";
  auto events = store->GetAnsibleEvents(run_id, stats, 0, 10000);
  if (!events.ok()) return events.status();
  SetAnsibleRecaps(*events, out);
  return absl::OkStatus();
}

// The full name of the node `node` names (its name or display name) in run `run_id`. NotFound
// (listing the leaf nodes) if there is none, or if the run is unknown.
absl::StatusOr<std::string> ResolveNode(storage::Store* store, const std::string& run_id,
                                        const std::string& node) {
  auto nodes = store->GetNodes(run_id);
  if (!nodes.ok()) return nodes.status();
  if (nodes->empty()) {
    if (auto run = store->GetRun(run_id); !run.ok()) return run.status();
  }
  std::string known;
  for (const auto& n : *nodes) {
    if (n.name == node || n.display_name == node) return n.name;
    if (engine::IsLeaf(n.type)) known += (known.empty() ? "" : ", ") + n.display_name;
  }
  return absl::NotFoundError(
      absl::StrCat("run ", run_id, " has no node \"", node, "\"; its nodes are: ", known));
}

// A node and, for Argo's name of a retry's attempt "<node>(<index>)" (server/convert.h), the
// attempt it names (index + 1; 0 for a plain node).
struct LogSource {
  std::string node;
  int attempt = 0;
};

// ResolveNode, or the Retry node and attempt that an attempt's name stands for.
absl::StatusOr<LogSource> ResolveLogSource(storage::Store* store, const std::string& run_id,
                                           const std::string& node) {
  absl::StatusOr<std::string> name = ResolveNode(store, run_id, node);
  if (name.ok()) return LogSource{*name, 0};
  const size_t open = node.rfind('(');
  int index = -1;
  if (!absl::IsNotFound(name.status()) || open == std::string::npos || node.back() != ')' ||
      !absl::SimpleAtoi(node.substr(open + 1, node.size() - open - 2), &index) || index < 0) {
    return name.status();
  }
  absl::StatusOr<std::string> parent = ResolveNode(store, run_id, node.substr(0, open));
  if (!parent.ok()) return name.status();
  auto nodes = store->GetNodes(run_id);
  if (!nodes.ok()) return nodes.status();
  for (const engine::NodeState& n : *nodes) {
    if (n.name == *parent && n.type == engine::NodeType::kRetry &&
        static_cast<size_t>(index) < n.attempts.size()) {
      return LogSource{n.name, index + 1};
    }
  }
  return name.status();
}

// The node filter of the Ansible event RPCs: "" (every node) for an empty `node`, once the run
// is known to exist; otherwise ResolveNode.
absl::StatusOr<std::string> ResolveNodeFilter(storage::Store* store, const std::string& run_id,
                                              const std::string& node) {
  if (!node.empty()) return ResolveNode(store, run_id, node);
  if (auto run = store->GetRun(run_id); !run.ok()) return run.status();
  return std::string();
}

template <typename Msg>
class FailedStream : public grpc::ServerWriteReactor<Msg> {
 public:
  explicit FailedStream(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

RunServiceImpl::RunServiceImpl(storage::Store* store, scheduler::Scheduler* scheduler, RunHub* hub,
                               AccessControl* access, storage::BundleLimits bundle_limits,
                               RunServiceLimits limits)
    : store_(store),
      scheduler_(scheduler),
      hub_(hub),
      access_(access),
      bundle_limits_(bundle_limits),
      limits_(limits) {}

absl::StatusOr<std::shared_ptr<void>> RunServiceImpl::OpenWatch(const Caller& caller) {
  const std::string principal = caller.principal().name;
  std::lock_guard<std::mutex> lock(watches_mutex_);
  int& open = open_watches_[principal];
  if (open >= limits_.max_watches_per_principal) {
    if (open == 0) open_watches_.erase(principal);
    return absl::ResourceExhaustedError(absl::StrCat(
        principal, " has ", limits_.max_watches_per_principal,
        " streams open (watches, followed logs and events; dagd --max-watches-per-principal): "
        "close one first"));
  }
  ++open;
  // Released when the stream is done and its writer, which holds the lease, is deleted.
  return std::shared_ptr<void>(nullptr, [this, principal](void*) {
    std::lock_guard<std::mutex> lock(watches_mutex_);
    if (--open_watches_[principal] <= 0) open_watches_.erase(principal);
  });
}

RunServiceImpl::~RunServiceImpl() { stream_pool_.join(); }

absl::StatusOr<Caller> RunServiceImpl::AdmitForRun(grpc::CallbackServerContext* context,
                                                   const std::string& method,
                                                   const std::string& run_id) {
  absl::StatusOr<Caller> caller = access_->Admit(context, method, [&] {
    absl::StatusOr<storage::RunRecord> run = store_->GetRun(run_id);
    return AccessControl::Located{run.ok() ? run->namespace_name : "", "run/" + run_id};
  });
  if (!caller.ok()) return caller.status();
  absl::StatusOr<storage::RunRecord> run = store_->GetRun(run_id);
  if (!run.ok()) return run.status();
  if (absl::Status st = caller->Authorize(run->namespace_name, "run/" + run->id); !st.ok()) {
    return st;
  }
  return caller;
}

std::function<void(absl::StatusOr<storage::RunRecord>)> RunServiceImpl::AnswerWithNewRun(
    grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor, v1::Run* response) {
  return [access = access_, context, reactor, response](absl::StatusOr<storage::RunRecord> run) {
    if (run.ok()) {
      ToProto(*run, {}, response);
      // Read by the audit interceptor when the status is sent, after Finish.
      access->Note(context, [&](AccessControl::CallNote& note) {
        note.target =
            note.target.empty() ? "run/" + run->id : absl::StrCat(note.target, ",run/", run->id);
      });
    }
    reactor->Finish(ToGrpcStatus(run.status()));
  };
}

grpc::ServerUnaryReactor* RunServiceImpl::SubmitRun(grpc::CallbackServerContext* context,
                                                    const v1::SubmitRunRequest* request,
                                                    v1::Run* response) {
  absl::StatusOr<Caller> caller = access_->Admit(context, "/dagd.v1.RunService/SubmitRun", [&] {
    // For the audit record of a refused caller: the namespace the request names, or its stored
    // workflow's (an inline spec's metadata.namespace is not parsed for it).
    AccessControl::Located located{request->namespace_(), ""};
    if (request->source_case() == v1::SubmitRunRequest::kWorkflowName) {
      located.target = "workflow/" + request->workflow_name();
      auto stored = store_->GetWorkflow(request->workflow_name(), 0);
      if (located.namespace_name.empty() && stored.ok()) {
        located.namespace_name = stored->namespace_name;
      }
    }
    return located;
  });
  if (!caller.ok()) return Done(context, caller.status());
  if (!request->request_id().empty()) {
    access_->Note(context,
                  [&](AccessControl::CallNote& note) { note.request_id = request->request_id(); });
  }
  scheduler::SubmitRequest submit;
  // The spec, parsed once its namespace must be read (and for its templateRefs).
  std::optional<engine::Workflow> parsed_spec;
  switch (request->source_case()) {
    case v1::SubmitRunRequest::kWorkflowName: {
      auto stored = store_->GetWorkflow(request->workflow_name(), request->workflow_version());
      if (!stored.ok()) return Done(context, stored.status());
      if (!request->namespace_().empty() && request->namespace_() != stored->namespace_name) {
        return Done(context, absl::InvalidArgumentError(absl::StrCat(
                                 "namespace: workflow ", stored->name, " belongs to namespace ",
                                 stored->namespace_name, ", not ", request->namespace_(),
                                 "; its runs do too (leave namespace empty)")));
      }
      if (auto st = caller->Authorize(stored->namespace_name, "workflow/" + stored->name);
          !st.ok()) {
        return Done(context, st);
      }
      submit.namespace_name = stored->namespace_name;
      if (request->bundle().files_size() > 0) {
        return Done(context, absl::InvalidArgumentError(absl::StrCat(
                                 "bundle: a run of stored workflow ", stored->name,
                                 " uses the bundle stored with its version; send a bundle only "
                                 "with spec_yaml, or apply the workflow with the new bundle")));
      }
      // The version's bundle must still hold its playbooks: versions stored before bundles were
      // uploaded (schema 3) have none.
      auto manifest = store_->GetBundleManifest(stored->bundle.digest);
      if (!manifest.ok()) return Done(context, manifest.status());
      std::set<std::string> paths;
      for (const storage::BundleEntry& entry : *manifest) paths.insert(entry.path);
      submit.check = [paths = std::move(paths), fix = absl::StrCat("apply workflow ", stored->name,
                                                                   " again with --bundle DIR")](
                         const engine::Workflow& workflow) {
        return CheckPlaybooksInBundle(workflow, paths, fix);
      };
      submit.workflow_yaml = stored->yaml;
      submit.workflow_name = stored->name;
      submit.workflow_version = stored->version;
      submit.bundle_digest = stored->bundle.digest;
      submit.file_name = absl::StrCat(stored->name, "@v", stored->version);
      break;
    }
    case v1::SubmitRunRequest::kSpecYaml:
      if (absl::Status size =
              CheckWorkflowSize(request->spec_yaml(), "spec_yaml", limits_.max_workflow_bytes);
          !size.ok()) {
        return Done(context, size);
      }
      submit.workflow_yaml = request->spec_yaml();
      submit.file_name = request->file_name().empty() ? "<request>" : request->file_name();
      {
        auto parsed = engine::ParseWorkflow(submit.workflow_yaml, submit.file_name);
        if (!parsed.ok()) return Done(context, parsed.status());
        // One workflow: further documents of a run's spec are the WorkflowTemplates dagd adds.
        if (engine::SplitYamlDocuments(submit.workflow_yaml).size() > 1) {
          return Done(context, absl::InvalidArgumentError(
                                   absl::StrCat(submit.file_name, ": a file holds one workflow")));
        }
        auto ns = ResolveNamespace(request->namespace_(), parsed->namespace_name, submit.file_name);
        if (!ns.ok()) return Done(context, ns.status());
        if (auto st = caller->Authorize(*ns, ""); !st.ok()) return Done(context, st);
        if (auto st = engine::CheckExpressionLimits(submit.workflow_yaml, *parsed, submit.file_name,
                                                    limits_.expressions);
            !st.ok()) {
          return Done(context, st);
        }
        submit.namespace_name = *std::move(ns);
        parsed_spec = *std::move(parsed);
      }
      {
        auto bundle = BundleFromProto(request->bundle(), bundle_limits_);
        if (!bundle.ok()) return Done(context, bundle.status());
        std::set<std::string> paths;
        for (const storage::BundleFile& file : *bundle) paths.insert(file.path);
        submit.check = [paths = std::move(paths)](const engine::Workflow& workflow) {
          return CheckPlaybooksInBundle(workflow, paths, "submit with --bundle DIR");
        };
        submit.bundle = *std::move(bundle);
      }
      break;
    default:
      return Done(context, absl::InvalidArgumentError(
                               "SubmitRun needs workflow_name (a stored workflow) or spec_yaml"));
  }
  // The WorkflowTemplates it refers to are stored with the run (engine/template_refs.h). Only a
  // YAML that mentions one is parsed here (the scheduler parses every submission anyway).
  if (absl::StrContains(submit.workflow_yaml, "emplateRef")) {
    if (!parsed_spec) {
      auto parsed = engine::ParseWorkflow(submit.workflow_yaml, submit.file_name);
      if (!parsed.ok()) return Done(context, parsed.status());
      parsed_spec = *std::move(parsed);
    }
    auto spec = BuildRunSpec(store_, submit.workflow_yaml, *parsed_spec);
    if (!spec.ok()) return Done(context, spec.status());
    submit.workflow_yaml = *std::move(spec);
  }
  for (const auto& [k, v] : request->parameters()) submit.parameters[k] = v;
  submit.request_id = request->request_id();
  for (const auto& [key, value] : request->labels()) {
    if (!IsLabelKey(key) || !IsLabelValue(value)) {
      return Done(context, absl::InvalidArgumentError(absl::StrCat(
                               "labels: \"", key, "=", value,
                               "\": keys are 1-253 characters of [A-Za-z0-9._/-], values at "
                               "most 63 of [A-Za-z0-9._-]")));
    }
    submit.labels[key] = value;
  }

  submit.submitted_by = caller->principal().name;
  auto* reactor = context->DefaultReactor();
  scheduler_->Submit(std::move(submit), AnswerWithNewRun(context, reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* RunServiceImpl::GetRun(grpc::CallbackServerContext* context,
                                                 const v1::GetRunRequest* request,
                                                 v1::Run* response) {
  absl::StatusOr<Caller> caller =
      AdmitForRun(context, "/dagd.v1.RunService/GetRun", request->run_id());
  if (!caller.ok()) return Done(context, caller.status());
  return Done(context, ReadRun(store_, request->run_id(), response));
}

grpc::ServerUnaryReactor* RunServiceImpl::ListRuns(grpc::CallbackServerContext* context,
                                                   const v1::ListRunsRequest* request,
                                                   v1::ListRunsResponse* response) {
  using google::protobuf::util::TimeUtil;
  absl::StatusOr<Caller> caller = access_->Admit(context, "/dagd.v1.RunService/ListRuns");
  if (!caller.ok()) return Done(context, caller.status());
  storage::RunFilter filter;
  filter.namespaces = caller->scope().namespaces;  // empty when every namespace
  if (!request->namespace_().empty()) {
    if (auto st = caller->Authorize(request->namespace_(), ""); !st.ok()) return Done(context, st);
    filter.namespaces = {request->namespace_()};
  }
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
  auto labels = ParseLabelSelector(request->label_selector());
  if (!labels.ok()) return Done(context, labels.status());
  filter.labels = *std::move(labels);
  if (absl::Status order = ParseOrderBy(request->order_by(), &filter); !order.ok()) {
    return Done(context, order);
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
  absl::StatusOr<Caller> caller = AdmitForRun(context, "/dagd.v1.RunService/WatchRun", run_id);
  if (!caller.ok()) return new FailedStream<v1::RunEvent>(caller.status());
  absl::StatusOr<std::shared_ptr<void>> lease = OpenWatch(*caller);
  if (!lease.ok()) return new FailedStream<v1::RunEvent>(lease.status());
  storage::Store* store = store_;
  // Fetches of one stream never overlap (PollingWriter), so the Ansible cursor needs no lock.
  const bool with_ansible = request->ansible_events();
  auto ansible_cursor = std::make_shared<int64_t>(request->after_ansible_sequence());
  auto fetch = [store, run_id, with_ansible, ansible_cursor,
                lease = *lease](int64_t cursor) -> absl::StatusOr<FetchResult<v1::RunEvent>> {
    FetchResult<v1::RunEvent> page;
    page.cursor = cursor;
    auto events = store->GetEvents(run_id, cursor, kPageSize);
    if (!events.ok()) return events.status();
    std::vector<storage::AnsibleEventRecord> ansible;
    if (with_ansible) {
      auto fetched = store->GetAnsibleEvents(run_id, storage::AnsibleEventFilter{}, *ansible_cursor,
                                             kPageSize);
      if (!fetched.ok()) return fetched.status();
      ansible = *std::move(fetched);
    }
    // Merge by time. A full page of one kind bounds what of the other may go out now: whatever
    // is later could be preceded by the next page. An Ansible event goes before a state change
    // of the same millisecond, except an attempt's or run's start.
    int64_t state_limit = INT64_MAX;
    int64_t ansible_limit = INT64_MAX;
    if (events->size() == static_cast<size_t>(kPageSize)) ansible_limit = events->back().time_ms;
    if (ansible.size() == static_cast<size_t>(kPageSize)) state_limit = ansible.back().time_ms;
    auto starts = [](const storage::EventRecord& e) {
      return e.type == "AttemptStarted" || e.type == "RunCreated";
    };
    size_t i = 0;
    size_t j = 0;
    while (true) {
      const bool state_ready = i < events->size() && (*events)[i].time_ms <= state_limit;
      const bool ansible_ready = j < ansible.size() && ansible[j].time_ms <= ansible_limit;
      if (!state_ready && !ansible_ready) break;
      bool take_ansible = ansible_ready;
      if (state_ready && ansible_ready) {
        const storage::EventRecord& e = (*events)[i];
        take_ansible =
            ansible[j].time_ms < e.time_ms || (ansible[j].time_ms == e.time_ms && !starts(e));
      }
      if (take_ansible) {
        v1::RunEvent& out = page.messages.emplace_back();
        out.set_type("AnsibleEvent");
        out.set_node_name(ansible[j].node_name);
        out.set_attempt(ansible[j].attempt);
        ToProto(ansible[j], out.mutable_ansible_event());
        *out.mutable_time() = out.ansible_event().time();
        *ansible_cursor = ansible[j].sequence;
        ++j;
        continue;
      }
      ToProto((*events)[i], &page.messages.emplace_back());
      page.cursor = (*events)[i].sequence;
      ++i;
      if (page.messages.back().final()) {
        page.end = true;
        break;
      }
    }
    if (events->empty() && ansible.empty()) {
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
  absl::StatusOr<Caller> caller = AdmitForRun(context, "/dagd.v1.RunService/GetNodeLogs", run_id);
  if (!caller.ok()) return new FailedStream<v1::LogChunk>(caller.status());
  absl::StatusOr<std::shared_ptr<void>> lease = OpenWatch(*caller);
  if (!lease.ok()) return new FailedStream<v1::LogChunk>(lease.status());
  absl::StatusOr<LogSource> source = ResolveLogSource(store_, run_id, request->node());
  if (!source.ok()) return new FailedStream<v1::LogChunk>(source.status());
  if (source->attempt > 0 && request->attempt() > 0 && request->attempt() != source->attempt) {
    return new FailedStream<v1::LogChunk>(absl::InvalidArgumentError(
        absl::StrCat("node \"", request->node(), "\" is attempt ", source->attempt, " of ",
                     source->node, ", not attempt ", request->attempt(), "; give one of the two")));
  }
  storage::Store* store = store_;
  const int attempt = source->attempt > 0 ? source->attempt : request->attempt();
  const bool follow = request->follow();
  auto fetch = [store, run_id, node_name = source->node, attempt, follow,
                lease = *lease](int64_t cursor) -> absl::StatusOr<FetchResult<v1::LogChunk>> {
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

grpc::ServerUnaryReactor* RunServiceImpl::ListAnsibleEvents(
    grpc::CallbackServerContext* context, const v1::ListAnsibleEventsRequest* request,
    v1::ListAnsibleEventsResponse* response) {
  const std::string& run_id = request->run_id();
  if (auto caller = AdmitForRun(context, "/dagd.v1.RunService/ListAnsibleEvents", run_id);
      !caller.ok()) {
    return Done(context, caller.status());
  }
  absl::StatusOr<std::string> node_name = ResolveNodeFilter(store_, run_id, request->node());
  if (!node_name.ok()) return Done(context, node_name.status());
  int64_t after = 0;
  if (!request->page_token().empty() && !absl::SimpleAtoi(request->page_token(), &after)) {
    return Done(context, absl::InvalidArgumentError(absl::StrCat(
                             "page_token \"", request->page_token(), "\" is not valid")));
  }
  storage::AnsibleEventFilter filter;
  filter.node_name = *node_name;
  filter.host = request->host();
  filter.changed_only = request->changed_only();
  filter.failed_only = request->failed_only();
  const int limit = request->page_size() > 0 ? std::min(request->page_size(), 10000) : 1000;
  auto events = store_->GetAnsibleEvents(run_id, filter, after, limit);
  if (!events.ok()) return Done(context, events.status());
  for (const auto& e : *events) ToProto(e, response->add_events());
  if (events->size() == static_cast<size_t>(limit)) {
    response->set_next_page_token(absl::StrCat(events->back().sequence));
  }
  return Done(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::AnsibleEvent>* RunServiceImpl::WatchAnsibleEvents(
    grpc::CallbackServerContext* context, const v1::WatchAnsibleEventsRequest* request) {
  const std::string run_id = request->run_id();
  absl::StatusOr<Caller> caller =
      AdmitForRun(context, "/dagd.v1.RunService/WatchAnsibleEvents", run_id);
  if (!caller.ok()) return new FailedStream<v1::AnsibleEvent>(caller.status());
  absl::StatusOr<std::shared_ptr<void>> lease = OpenWatch(*caller);
  if (!lease.ok()) return new FailedStream<v1::AnsibleEvent>(lease.status());
  absl::StatusOr<std::string> node_name = ResolveNodeFilter(store_, run_id, request->node());
  if (!node_name.ok()) return new FailedStream<v1::AnsibleEvent>(node_name.status());
  storage::AnsibleEventFilter filter;
  filter.node_name = *node_name;
  filter.host = request->host();
  filter.changed_only = request->changed_only();
  filter.failed_only = request->failed_only();
  storage::Store* store = store_;
  auto fetch = [store, run_id, filter,
                lease = *lease](int64_t cursor) -> absl::StatusOr<FetchResult<v1::AnsibleEvent>> {
    FetchResult<v1::AnsibleEvent> page;
    page.cursor = cursor;
    // The run's phase first: a run seen final has every event committed already.
    auto run = store->GetRun(run_id);
    if (!run.ok()) return run.status();
    auto events = store->GetAnsibleEvents(run_id, filter, cursor, kPageSize);
    if (!events.ok()) return events.status();
    for (const auto& e : *events) {
      ToProto(e, &page.messages.emplace_back());
      page.cursor = e.sequence;
    }
    if (events->size() < static_cast<size_t>(kPageSize) && engine::IsFinal(run->phase)) {
      page.end = true;
    }
    return page;
  };
  return new PollingWriter<v1::AnsibleEvent>(hub_, &stream_pool_, run_id, request->after_sequence(),
                                             std::move(fetch));
}

grpc::ServerUnaryReactor* RunServiceImpl::EndRun(grpc::CallbackServerContext* context,
                                                 const v1::EndRunRequest* request,
                                                 v1::Run* response, bool terminate) {
  if (auto caller = AdmitForRun(
          context, terminate ? "/dagd.v1.RunService/TerminateRun" : "/dagd.v1.RunService/StopRun",
          request->run_id());
      !caller.ok()) {
    return Done(context, caller.status());
  }
  auto* reactor = context->DefaultReactor();
  scheduler_->Stop(request->run_id(), request->message(), terminate,
                   AnswerWithRun(reactor, response));
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

grpc::ServerUnaryReactor* RunServiceImpl::ResumeRun(grpc::CallbackServerContext* context,
                                                    const v1::ResumeRunRequest* request,
                                                    v1::Run* response) {
  if (auto caller = AdmitForRun(context, "/dagd.v1.RunService/ResumeRun", request->run_id());
      !caller.ok()) {
    return Done(context, caller.status());
  }
  std::string node;
  if (!request->node().empty()) {
    absl::StatusOr<std::string> resolved = ResolveNode(store_, request->run_id(), request->node());
    if (!resolved.ok()) return Done(context, resolved.status());
    node = *std::move(resolved);
  }
  auto* reactor = context->DefaultReactor();
  scheduler_->ChangeSuspended(
      request->run_id(), "RunResumeRequested",
      request->message().empty() ? (node.empty() ? "resume" : "resume " + request->node())
                                 : request->message(),
      [node](engine::RunState& state, int64_t now_ms) { return state.Resume(node, now_ms); },
      AnswerWithRun(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* RunServiceImpl::RetryRun(grpc::CallbackServerContext* context,
                                                   const v1::RetryRunRequest* request,
                                                   v1::Run* response) {
  if (auto caller = AdmitForRun(context, "/dagd.v1.RunService/RetryRun", request->run_id());
      !caller.ok()) {
    return Done(context, caller.status());
  }
  std::set<std::string> restart;
  for (const std::string& node : request->restart_nodes()) {
    absl::StatusOr<std::string> resolved = ResolveNode(store_, request->run_id(), node);
    if (!resolved.ok()) return Done(context, resolved.status());
    restart.insert(*std::move(resolved));
  }
  std::string message = request->message();
  if (message.empty()) {
    message = "retry";
    for (const std::string& node : request->restart_nodes()) absl::StrAppend(&message, " ", node);
  }
  auto* reactor = context->DefaultReactor();
  scheduler_->Retry(request->run_id(), std::move(restart), message,
                    AnswerWithRun(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* RunServiceImpl::ResubmitRun(grpc::CallbackServerContext* context,
                                                      const v1::ResubmitRunRequest* request,
                                                      v1::Run* response) {
  absl::StatusOr<Caller> caller =
      AdmitForRun(context, "/dagd.v1.RunService/ResubmitRun", request->run_id());
  if (!caller.ok()) return Done(context, caller.status());
  auto* reactor = context->DefaultReactor();
  scheduler_->Resubmit(request->run_id(), request->memoized(),
                       std::map<std::string, std::string>(request->parameters().begin(),
                                                          request->parameters().end()),
                       caller->principal().name, AnswerWithNewRun(context, reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* RunServiceImpl::SetNode(grpc::CallbackServerContext* context,
                                                  const v1::SetNodeRequest* request,
                                                  v1::Run* response) {
  if (auto caller = AdmitForRun(context, "/dagd.v1.RunService/SetNode", request->run_id());
      !caller.ok()) {
    return Done(context, caller.status());
  }
  if (request->node().empty()) {
    return Done(context, absl::InvalidArgumentError("node: name the suspended node to set"));
  }
  std::optional<engine::NodePhase> phase;
  if (request->phase() != v1::PHASE_UNSPECIFIED) {
    engine::NodePhase parsed;
    if (!FromProtoPhase(request->phase(), &parsed)) {
      return Done(context, absl::InvalidArgumentError("phase: unknown phase"));
    }
    phase = parsed;
  }
  absl::StatusOr<std::string> node = ResolveNode(store_, request->run_id(), request->node());
  if (!node.ok()) return Done(context, node.status());
  std::map<std::string, std::string> outputs(request->output_parameters().begin(),
                                             request->output_parameters().end());
  std::string what = absl::StrCat("set ", request->node());
  for (const auto& [name, value] : outputs) absl::StrAppend(&what, " ", name, "=", value);
  if (phase) absl::StrAppend(&what, " phase=", engine::NodePhaseName(*phase));
  if (!request->message().empty()) absl::StrAppend(&what, ": ", request->message());
  auto* reactor = context->DefaultReactor();
  scheduler_->ChangeSuspended(
      request->run_id(), "NodeSetRequested", what,
      [node = *node, outputs = std::move(outputs), phase, message = request->message()](
          engine::RunState& state, int64_t now_ms) {
        return state.SetSuspendedNode(node, outputs, phase, message, now_ms);
      },
      AnswerWithRun(reactor, response));
  return reactor;
}

}  // namespace dagd::server
