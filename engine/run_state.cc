#include "engine/run_state.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/duration.h"
#include "engine/expr.h"
#include "engine/internal/dag_plan.h"
#include "engine/internal/resolve.h"
#include "engine/memo.h"
#include "engine/status_macros.h"
#include "engine/tags.h"
#include "engine/when.h"

namespace dagd::engine {

using internal::DagPlan;

namespace {

// Argo guards recursion between templates the same way (its maxStackDepth).
constexpr int kMaxDagDepth = 100;

bool FailedOrError(NodePhase phase) {
  return phase == NodePhase::kFailed || phase == NodePhase::kError;
}

// Argo's "Completed": the node ran (or tried to) and has a result of its own.
bool Completed(NodePhase phase) { return FailedOrError(phase) || phase == NodePhase::kSucceeded; }

bool WaitingForRetry(const NodeState& node) {
  return IsLeaf(node.type) && node.phase == NodePhase::kRunning && !node.attempts.empty() &&
         node.attempts.back().phase != NodePhase::kRunning;
}

bool Queued(const NodeState& node) {
  return IsLeaf(node.type) && node.phase == NodePhase::kPending && node.attempts.empty();
}

bool AttemptRunning(const NodeState& node) {
  return IsLeaf(node.type) && !node.attempts.empty() &&
         node.attempts.back().phase == NodePhase::kRunning;
}

NodeType TypeOf(const Template* tmpl) {
  if (tmpl == nullptr) return NodeType::kPod;
  if (tmpl->type == TemplateType::kDag) return NodeType::kDag;
  if (tmpl->type == TemplateType::kSteps) return NodeType::kSteps;
  if (tmpl->type == TemplateType::kSuspend) return NodeType::kSuspend;
  return tmpl->retry_strategy ? NodeType::kRetry : NodeType::kPod;
}

// A node whose template has a body of tasks or steps (it has child nodes, no attempts).
bool Composite(NodeType type) { return type == NodeType::kDag || type == NodeType::kSteps; }

bool SkippedOrOmitted(NodePhase phase) {
  return phase == NodePhase::kSkipped || phase == NodePhase::kOmitted;
}

// Why a template cannot run yet, or empty if it can.
std::string UnsupportedReason(const Template& tmpl) {
  switch (tmpl.type) {
    case TemplateType::kUnsupported:
      return absl::StrCat("template '", tmpl.name, "' is of a type dagd cannot run yet");
    default:
      return "";
  }
}

// Why a DAG, a step group or the run failed because of `hook`, which ended in Error.
std::string HookFailureMessage(const NodeState& hook) {
  return absl::StrCat("hook '", hook.name, "' errored", hook.message.empty() ? "" : ": ",
                      hook.message);
}

// The message a DAG or task group takes when `culprit` fails it. Messages name the leaf that
// failed, not every level in between.
std::string ChildFailureMessage(const NodeState& culprit) {
  if (!IsLeaf(culprit.type) && !culprit.children.empty() && !culprit.message.empty()) {
    return culprit.message;
  }
  return absl::StrCat("child '", culprit.name, "' ",
                      culprit.phase == NodePhase::kError ? "errored" : "failed",
                      culprit.message.empty() ? "" : ": ", culprit.message);
}

// The phase Argo's assessDAGPhase deduces for a task's branch: its own phase if it completed,
// otherwise (Skipped, Omitted) the first Failed/Error branch among its dependencies, else
// Succeeded. `culprit` is the node whose failure the branch inherits.
struct Branch {
  bool known = false;  // false: the task has no node yet
  NodePhase phase = NodePhase::kSucceeded;
  const NodeState* culprit = nullptr;
};

Branch BranchOf(const std::map<std::string, NodeState>& nodes, const DagPlan& plan,
                const std::string& dag_name, const std::string& task,
                std::map<std::string, Branch>* memo) {
  auto cached = memo->find(task);
  if (cached != memo->end()) return cached->second;
  Branch branch;
  auto it = nodes.find(dag_name + "." + task);
  if (it != nodes.end()) {
    const NodeState& node = it->second;
    branch.known = true;
    if (Completed(node.phase)) {
      branch.phase = node.phase;
      branch.culprit = &node;
    } else {
      for (const std::string& dep : plan.deps.at(task)) {
        Branch parent = BranchOf(nodes, plan, dag_name, dep, memo);
        if (parent.known && FailedOrError(parent.phase)) {
          branch.phase = parent.phase;
          branch.culprit = parent.culprit;
          break;
        }
      }
    }
  }
  memo->emplace(task, branch);
  return branch;
}

bool ContinuesOn(const DagTask& task, NodePhase phase) {
  return (phase == NodePhase::kFailed && task.continue_on.failed) ||
         (phase == NodePhase::kError && task.continue_on.error);
}

bool Retries(RetryPolicy policy, NodePhase phase) {
  switch (policy) {
    case RetryPolicy::kAlways:
      return true;
    case RetryPolicy::kOnFailure:
      return phase == NodePhase::kFailed;
    case RetryPolicy::kOnError:
    case RetryPolicy::kOnTransientError:  // until transient errors are told apart
      return phase == NodePhase::kError;
  }
  return false;
}

// True if `text` names an output of a Skipped or Omitted task or step (`{{tasks.X.outputs.…}}`)
// that `scope` does not hold: Argo drops such an argument so the input's default applies.
bool NamesAbsentOutput(const std::string& text, const TagScope& scope) {
  for (const std::string& tag : FindDagdTags(text)) {
    if (scope.count(tag) > 0) continue;
    const std::vector<std::string> parts = absl::StrSplit(tag, '.');
    if (parts.size() < 3 || (parts[0] != "tasks" && parts[0] != "steps") || parts[2] != "outputs") {
      continue;
    }
    auto status = scope.find(absl::StrCat(parts[0], ".", parts[1], ".status"));
    NodePhase phase = NodePhase::kPending;
    if (status != scope.end() && ParseNodePhase(status->second, &phase) &&
        SkippedOrOmitted(phase)) {
      return true;
    }
  }
  return false;
}

// Argo's {{workflow.duration}}: seconds with six decimals.
std::string FormatSeconds(int64_t ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.6f", static_cast<double>(ms) / 1000.0);
  return buffer;
}

bool HasDefault(const Template& tmpl, const std::string& input) {
  for (const Parameter& parameter : tmpl.inputs.parameters) {
    if (parameter.name == input) return parameter.value || parameter.default_value;
  }
  return false;
}

// The input artifacts of a pod node of `tmpl` (see the header): an argument's `from` or key is
// read in the caller's `caller_scope`, the input's own key in the template's `body_scope`.
absl::StatusOr<std::map<std::string, ArtifactRef>> ResolveInputArtifacts(
    const Template& tmpl, const std::vector<Artifact>& arguments, const TagScope& caller_scope,
    const TagScope& body_scope) {
  std::map<std::string, ArtifactRef> resolved;
  for (const Artifact& input : tmpl.inputs.artifacts) {
    const Artifact* argument = nullptr;
    for (const Artifact& candidate : arguments) {
      if (candidate.name == input.name) argument = &candidate;
    }
    std::string text;
    const TagScope* scope = &caller_scope;
    std::string field = absl::StrCat("arguments.artifacts.", input.name);
    if (argument != nullptr && !argument->from.empty()) {
      text = argument->from;
    } else if (argument != nullptr && !argument->key.empty()) {
      text = argument->key;
    } else if (argument != nullptr && argument->raw) {
      absl::StatusOr<std::string> data = SubstituteTags(*argument->raw, caller_scope);
      if (!data.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(field, ": ", data.status().message()));
      }
      resolved[input.name].raw = *std::move(data);
      continue;
    } else if (!input.key.empty()) {
      text = input.key;
      scope = &body_scope;
      field = absl::StrCat("inputs.artifacts.", input.name);
    } else if (input.raw || input.optional) {
      continue;  // raw data stays in the template; an optional input may be absent
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("inputs.artifacts.", input.name, " was not supplied"));
    }
    absl::StatusOr<std::string> key = SubstituteTags(text, *scope);
    if (!key.ok()) {
      if (input.optional) continue;  // e.g. an optional output its producer did not leave
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", key.status().message()));
    }
    ArtifactRef& ref = resolved[input.name];
    ref.key = *std::move(key);
    ref.sub_path =
        argument != nullptr && !argument->sub_path.empty() ? argument->sub_path : input.sub_path;
  }
  return resolved;
}

// The input artifacts of a dag or steps template, which its tasks pass on by key as
// `{{inputs.artifacts.NAME}}`: as ResolveInputArtifacts, but raw data and a subPath, which only a
// container or script template reads, are an error.
absl::StatusOr<std::map<std::string, ArtifactRef>> ResolvePassedArtifacts(
    const Template& tmpl, const std::vector<Artifact>& arguments, const TagScope& caller_scope,
    const TagScope& body_scope) {
  ASSIGN_OR_RETURN(auto resolved, ResolveInputArtifacts(tmpl, arguments, caller_scope, body_scope));
  for (const Artifact& input : tmpl.inputs.artifacts) {
    auto ref = resolved.find(input.name);
    const bool raw = ref != resolved.end() ? ref->second.raw.has_value() : input.raw.has_value();
    if (raw || (ref != resolved.end() && !ref->second.sub_path.empty())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inputs.artifacts.", input.name, ": a ", TemplateTypeName(tmpl.type),
          " template passes artifacts on by key; raw data and subPath are read only by "
          "container and script templates"));
    }
  }
  return resolved;
}

// A node's directory in the artifact store: its name made safe for a path, and a hash of the
// name so that two names that read the same there stay apart.
std::string ArtifactNodeDir(const std::string& run_name, const std::string& node_name) {
  std::string safe = node_name.substr(std::min(node_name.size(), run_name.size()));
  if (!safe.empty() && safe.front() == '.') safe.erase(0, 1);  // "run.A" → "A"
  if (safe.empty()) safe = "root";
  for (char& c : safe) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '-' && c != '_') {
      c = '_';
    }
  }
  uint32_t hash = 2166136261u;  // FNV-1a
  for (unsigned char c : node_name) hash = (hash ^ c) * 16777619u;
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", hash);
  return absl::StrCat(safe.substr(0, 100), "-", hex);
}

}  // namespace

const char* NodeTypeName(NodeType type) {
  switch (type) {
    case NodeType::kDag:
      return "DAG";
    case NodeType::kTaskGroup:
      return "TaskGroup";
    case NodeType::kPod:
      return "Pod";
    case NodeType::kSteps:
      return "Steps";
    case NodeType::kStepGroup:
      return "StepGroup";
    case NodeType::kSuspend:
      return "Suspend";
    case NodeType::kRetry:
      return "Retry";
  }
  return "Unknown";
}

bool ParseNodeType(const std::string& text, NodeType* type) {
  for (NodeType t : {NodeType::kDag, NodeType::kTaskGroup, NodeType::kPod, NodeType::kSteps,
                     NodeType::kStepGroup, NodeType::kSuspend, NodeType::kRetry}) {
    if (text == NodeTypeName(t)) {
      *type = t;
      return true;
    }
  }
  return false;
}

// ---- construction -------------------------------------------------------------------------

absl::StatusOr<RunState> RunState::Create(std::shared_ptr<const Workflow> workflow,
                                          std::map<std::string, std::string> parameters,
                                          std::string run_name, int64_t now_ms) {
  const Template* entry = workflow->FindTemplate(workflow->entrypoint);
  if (entry == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("entrypoint template '", workflow->entrypoint, "' not found"));
  }
  if (std::string reason = UnsupportedReason(*entry); !reason.empty()) {
    return absl::UnimplementedError(reason);
  }
  RunState state;
  state.workflow_ = std::move(workflow);
  state.parameters_ = std::move(parameters);
  state.run_name_ = std::move(run_name);
  state.BuildPlans();

  // Argo hands the workflow's arguments to the entrypoint template.
  const TagScope workflow_scope = state.RunScope();
  absl::StatusOr<std::map<std::string, std::string>> inputs =
      internal::ResolveInputs(*entry, state.parameters_, workflow_scope);
  std::string error;
  if (!inputs.ok()) {
    error = std::string(inputs.status().message());
  } else if (!Composite(TypeOf(entry))) {
    absl::StatusOr<Template> body =
        internal::ResolveTemplate(*entry, internal::WithInputs(workflow_scope, *inputs), *inputs);
    if (!body.ok()) error = std::string(body.status().message());
  }
  absl::StatusOr<std::map<std::string, ArtifactRef>> input_artifacts;
  if (error.empty() && (IsLeaf(TypeOf(entry)) || Composite(TypeOf(entry)))) {
    input_artifacts = (Composite(TypeOf(entry)) ? ResolvePassedArtifacts : ResolveInputArtifacts)(
        *entry, state.workflow_->arguments.artifacts, workflow_scope,
        internal::WithInputs(workflow_scope, *inputs));
    if (!input_artifacts.ok()) error = std::string(input_artifacts.status().message());
  }
  const NodeType type = TypeOf(entry);
  int64_t resume_at_ms = 0;
  if (error.empty() && type == NodeType::kSuspend) {
    absl::StatusOr<int64_t> until =
        state.SuspendUntil(*entry, internal::WithInputs(workflow_scope, *inputs), now_ms);
    if (until.ok()) resume_at_ms = *until;
    if (!until.ok()) error = std::string(until.status().message());
  }
  NodeState& root = state.AddNode(
      state.run_name_, state.run_name_, "", "", entry->name, type,
      Composite(type) || type == NodeType::kSuspend ? NodePhase::kRunning : NodePhase::kPending, "",
      now_ms);
  if (inputs.ok()) root.inputs = *inputs;
  if (input_artifacts.ok()) root.input_artifacts = *std::move(input_artifacts);
  root.resume_at_ms = resume_at_ms;
  if (!error.empty()) state.Finish(state.run_name_, NodePhase::kError, error, now_ms);
  return state;
}

absl::StatusOr<RunState> RunState::Restore(std::shared_ptr<const Workflow> workflow,
                                           std::map<std::string, std::string> parameters,
                                           std::string run_name, std::vector<NodeState> nodes,
                                           StopStrategy stop) {
  RunState state;
  state.workflow_ = std::move(workflow);
  state.parameters_ = std::move(parameters);
  state.run_name_ = std::move(run_name);
  state.stopping_ = stop != StopStrategy::kNone;
  state.stop_strategy_ = stop;
  for (NodeState& node : nodes) {
    const std::string name = node.name;
    if (!state.nodes_.emplace(name, std::move(node)).second) {
      return absl::InvalidArgumentError(absl::StrCat("stored node '", name, "' twice"));
    }
  }
  auto root = state.nodes_.find(state.run_name_);
  if (root == state.nodes_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("stored nodes of run '", state.run_name_, "' have no root node"));
  }
  for (const auto& [name, node] : state.nodes_) {
    for (const std::string& child : node.children) {
      if (state.nodes_.count(child) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("stored node '", name, "' names unknown child '", child, "'"));
      }
    }
  }
  if (state.stopping_) state.stop_message_ = root->second.message;
  std::vector<const NodeState*> succeeded;
  for (const auto& [name, node] : state.nodes_) {
    if (node.phase == NodePhase::kSucceeded) succeeded.push_back(&node);
  }
  std::stable_sort(succeeded.begin(), succeeded.end(), [](const NodeState* a, const NodeState* b) {
    return a->finished_at_ms < b->finished_at_ms;
  });
  for (const NodeState* node : succeeded) state.RecordGlobalOutputs(*node);
  // Anything under the root, or a started root pod, means the run took its workflow locks.
  state.workflow_locks_held_ = !root->second.children.empty() || !root->second.attempts.empty() ||
                               IsFinal(root->second.phase);
  state.BuildPlans();
  return state;
}

void RunState::BuildPlans() {
  const TagScope workflow_scope = internal::WorkflowScope(*workflow_, parameters_, run_name_);
  for (const Template& tmpl : workflow_->templates) {
    auto note_hooks = [&](const DagTask& task) {
      has_task_hooks_ |= task.exit_hook.has_value() || !task.hooks.empty();
      has_lifecycle_hooks_ |= !task.hooks.empty();
    };
    if (tmpl.dag) {
      for (const DagTask& task : tmpl.dag->tasks) note_hooks(task);
    }
    if (tmpl.steps) {
      for (const std::vector<DagTask>& group : tmpl.steps->groups) {
        for (const DagTask& step : group) note_hooks(step);
      }
    }
  }
  has_lifecycle_hooks_ |= !workflow_->hooks.empty();
  for (const Template& tmpl : workflow_->templates) {
    if (tmpl.type != TemplateType::kDag || !tmpl.dag) continue;
    // dag.target may name workflow parameters ("{{workflow.parameters.target}}", as in Argo's
    // dag-targets example). A target that does not resolve here stays as written, and the plan
    // then names it as an unknown task.
    if (tmpl.dag->target.find("{{") != std::string::npos) {
      absl::StatusOr<std::string> target = SubstituteTags(tmpl.dag->target, workflow_scope);
      if (target.ok()) {
        plans_[tmpl.name] = std::make_shared<const DagPlan>(internal::BuildDagPlan(tmpl, &*target));
        continue;
      }
    }
    plans_[tmpl.name] = std::make_shared<const DagPlan>(internal::BuildDagPlan(tmpl));
  }
}

const DagPlan* RunState::PlanFor(const std::string& template_name) const {
  auto it = plans_.find(template_name);
  return it == plans_.end() ? nullptr : it->second.get();
}

// ---- node bookkeeping ---------------------------------------------------------------------

NodeState& RunState::Mutable(const std::string& name) {
  changed_.insert(name);
  return nodes_.at(name);
}

NodeState& RunState::AddNode(const std::string& name, const std::string& display_name,
                             const std::string& parent, const std::string& task_name,
                             const std::string& template_name, NodeType type, NodePhase phase,
                             std::string message, int64_t now_ms) {
  if (limits_.max_nodes > 0 && nodes_.size() >= limits_.max_nodes && !IsFinal(phase) &&
      nodes_.count(name) == 0) {
    phase = NodePhase::kError;
    message = absl::StrCat("the run reached its limit of ", limits_.max_nodes,
                           " nodes (dagd --max-nodes-per-run)");
  }
  NodeState node;
  node.name = name;
  node.display_name = display_name;
  node.parent = parent;
  node.task_name = task_name;
  node.template_name = template_name;
  node.type = type;
  node.phase = phase;
  node.message = std::move(message);
  node.started_at_ms = now_ms;
  if (IsFinal(phase)) node.finished_at_ms = now_ms;
  if (!parent.empty()) Mutable(parent).children.push_back(name);
  changed_.insert(name);
  return nodes_.insert_or_assign(name, std::move(node)).first->second;
}

void RunState::Finish(const std::string& name, NodePhase phase, std::string message,
                      int64_t now_ms) {
  NodeState& node = Mutable(name);
  node.phase = phase;
  node.message = std::move(message);
  node.finished_at_ms = now_ms;
  node.retry_at_ms = 0;
  if (phase == NodePhase::kSucceeded) {
    RecordGlobalOutputs(node);
    SaveToCache(node, now_ms);
  }
}

namespace {

// A memoized node's cache key and maxAge (-1: none), read in its template's scope.
absl::StatusOr<std::pair<std::string, int64_t>> MemoLookupOf(const Memoize& memoize,
                                                             const TagScope& scope) {
  absl::StatusOr<std::string> key = SubstituteTags(memoize.key, scope);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("memoize.key: ", key.status().message()));
  }
  int64_t max_age_ms = -1;
  if (!memoize.max_age.empty()) {
    absl::StatusOr<std::string> text = SubstituteTags(memoize.max_age, scope);
    absl::StatusOr<int64_t> age = text.ok() ? ParseDurationMs(*text) : text.status();
    if (!age.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("memoize.maxAge: ", age.status().message()));
    }
    max_age_ms = *age;
  }
  return std::make_pair(*std::move(key), max_age_ms);
}

}  // namespace

bool RunState::FinishFromCache(const std::string& name, int64_t now_ms) {
  if (memo_ == nullptr) return false;
  const NodeState& node = nodes_.at(name);
  const Template* tmpl = workflow_->FindTemplate(node.template_name);
  if (tmpl == nullptr || !tmpl->memoize) return false;
  absl::StatusOr<std::pair<std::string, int64_t>> lookup =
      MemoLookupOf(*tmpl->memoize, BodyScope(node));
  if (!lookup.ok()) {
    Finish(name, NodePhase::kError, std::string(lookup.status().message()), now_ms);
    return true;
  }
  const MemoCache::Entry* entry =
      memo_->Find(tmpl->memoize->cache, lookup->first, now_ms, lookup->second);
  if (entry == nullptr) return false;
  NodeState& hit = Mutable(name);
  hit.outputs = entry->outputs;
  hit.phase = NodePhase::kSucceeded;
  hit.message = absl::StrCat("Memoized: cache ", tmpl->memoize->cache, ", key ", lookup->first,
                             ", from ", entry->node);
  hit.finished_at_ms = now_ms;
  RecordGlobalOutputs(hit);
  return true;
}

void RunState::SaveToCache(const NodeState& node, int64_t now_ms) {
  if (memo_ == nullptr) return;
  const Template* tmpl = workflow_->FindTemplate(node.template_name);
  if (tmpl == nullptr || !tmpl->memoize) return;
  absl::StatusOr<std::pair<std::string, int64_t>> lookup =
      MemoLookupOf(*tmpl->memoize, BodyScope(node));
  if (!lookup.ok()) return;  // checked when the node started
  memo_->Put(tmpl->memoize->cache, lookup->first,
             {node.outputs, now_ms, absl::StrCat(run_name_, "/", node.name)});
}

void RunState::RecordGlobalOutputs(const NodeState& node) {
  const Template* tmpl = workflow_->FindTemplate(node.template_name);
  if (tmpl == nullptr) return;
  for (const Parameter& output : tmpl->outputs.parameters) {
    auto it = node.outputs.parameters.find(output.name);
    if (!output.global_name.empty() && it != node.outputs.parameters.end()) {
      global_outputs_["parameters." + output.global_name] = it->second;
    }
  }
  for (const Artifact& output : tmpl->outputs.artifacts) {
    auto it = node.outputs.artifacts.find(output.name);
    if (!output.global_name.empty() && it != node.outputs.artifacts.end()) {
      global_outputs_["artifacts." + output.global_name] = it->second;
    }
  }
}

// ---- the DAG walk -------------------------------------------------------------------------

void RunState::Propagate(int64_t now_ms) {
  ProcessChild(run_name_, -1, now_ms);
  ProcessWorkflowHooks(now_ms);
  ProcessWorkflowExitHook(now_ms);
  // The run's spec.synchronization locks go with its end.
  if (Done() && workflow_locks_held_ && locks_ != nullptr) locks_->Release(run_name_);
}

void RunState::ProcessChild(const std::string& name, int depth, int64_t now_ms) {
  ProcessNode(name, depth, now_ms);
  ProcessHooks(name, depth, now_ms);
}

void RunState::ProcessNode(const std::string& name, int depth, int64_t now_ms) {
  const NodeState& node = nodes_.at(name);
  if (IsFinal(node.phase)) return;
  if (node.type == NodeType::kSuspend) {
    if (node.resume_at_ms > 0 && now_ms >= node.resume_at_ms) FinishSuspended(name, now_ms);
    return;
  }
  if (Composite(node.type) && node.phase == NodePhase::kPending) {
    // Waits for a slot under its parent template's parallelism (Argo counts a nested dag or
    // steps node as one active child).
    if (StopHolds(name) || BoundaryFull(BoundaryOf(name))) return;
    NodeState& started = Mutable(name);
    started.phase = NodePhase::kRunning;
    started.started_at_ms = now_ms;
  }
  if ((node.type == NodeType::kDag || node.type == NodeType::kSteps) && node.children.empty() &&
      node.phase == NodePhase::kRunning && FinishFromCache(name, now_ms)) {
    return;
  }
  if (node.type == NodeType::kDag) {
    ProcessDag(name, depth + 1, now_ms);
  } else if (node.type == NodeType::kSteps) {
    ProcessSteps(name, depth + 1, now_ms);
  } else if (node.type == NodeType::kTaskGroup) {
    for (const std::string& child : std::vector<std::string>(node.children)) {
      ProcessChild(child, depth, now_ms);
    }
    AssessGroup(name, now_ms);
  }
}

void RunState::ProcessDag(const std::string& name, int depth, int64_t now_ms) {
  if (IsFinal(nodes_.at(name).phase)) return;
  const DagPlan* plan = PlanFor(nodes_.at(name).template_name);
  if (plan == nullptr) {
    Finish(name, NodePhase::kError,
           absl::StrCat("dag template '", nodes_.at(name).template_name, "' not found"), now_ms);
    return;
  }
  if (!plan->error.empty()) {
    Finish(name, NodePhase::kError, plan->error, now_ms);
    return;
  }
  // Dependencies come first in plan->order, so a task that settles here (Omitted, Error, a DAG
  // that finishes at once) lets its dependents go in the same pass.
  for (const DagTask* task : plan->order) {
    const std::string task_node = name + "." + task->name;
    if (nodes_.count(task_node) > 0) {
      ProcessChild(task_node, depth, now_ms);
      continue;
    }
    if (StopHolds(name)) continue;
    const Template* tmpl = workflow_->FindTemplate(task->template_name);
    auto task_error = plan->task_errors.find(task->name);
    if (task_error != plan->task_errors.end()) {
      AddNode(task_node, task->name, name, task->name, task->template_name, TypeOf(tmpl),
              NodePhase::kError, task_error->second, now_ms);
      continue;
    }
    const std::set<std::string>& deps = plan->deps.at(task->name);
    const bool ready = std::all_of(deps.begin(), deps.end(), [&](const std::string& dep) {
      return nodes_.count(name + "." + dep) > 0 && Settled(name + "." + dep);
    });
    if (!ready) continue;
    const bool run = plan->depends.at(task->name).Evaluate([&](const std::string& dep) {
      const NodeState& node = nodes_.at(name + "." + dep);
      TaskOutcome outcome;
      outcome.phase = node.phase;
      if (node.type == NodeType::kTaskGroup) {
        for (const std::string& child : node.children) {
          outcome.child_phases.push_back(nodes_.at(child).phase);
        }
      }
      outcome.continue_on = plan->tasks.at(dep)->continue_on;
      return outcome;
    });
    if (!run) {
      AddNode(task_node, task->name, name, task->name, task->template_name,
              task->with_items.empty() && task->with_param.empty() ? TypeOf(tmpl)
                                                                   : NodeType::kTaskGroup,
              NodePhase::kOmitted, "omitted: depends condition not met", now_ms);
      continue;
    }
    std::set<std::string> ancestors = plan->ancestors.at(task->name);
    StartTask(name, *task, DagScope(name, ancestors), /*in_steps=*/false, depth, now_ms);
    // A task that ended at once (an Error) may have hooks to start.
    if (nodes_.count(task_node) > 0) ProcessChild(task_node, depth, now_ms);
  }
  AssessDag(name, *plan, now_ms);
}

void RunState::StartTask(const std::string& parent, const DagTask& task, const TagScope& scope,
                         bool in_steps, int depth, int64_t now_ms) {
  const std::string node_name = parent + "." + task.name;
  const Template* tmpl = workflow_->FindTemplate(task.template_name);
  const bool fan_out =
      !task.with_items.empty() || !task.with_param.empty() || task.with_sequence.has_value();
  const NodeType type = fan_out && !in_steps ? NodeType::kTaskGroup : TypeOf(tmpl);
  auto fail = [&](std::string message) {
    AddNode(node_name, task.name, parent, task.name, task.template_name, type, NodePhase::kError,
            std::move(message), now_ms);
  };
  if (tmpl == nullptr) return fail(absl::StrCat("template '", task.template_name, "' not found"));
  if (std::string reason = UnsupportedReason(*tmpl); !reason.empty()) return fail(reason);
  if (Composite(TypeOf(tmpl)) && depth + 1 >= kMaxDagDepth) {
    return fail(absl::StrCat("templates nested deeper than ", kMaxDagDepth,
                             " levels (a template that calls itself without end?)"));
  }
  // `when`, after substitution (per item for a fan-out, which may name {{item}}): false gives
  // a Skipped node, as in Argo; a condition that does not evaluate is an Error.
  auto evaluate_when = [&](const TagScope& when_scope) -> absl::StatusOr<std::string> {
    if (task.when.empty()) return std::string();
    absl::StatusOr<std::string> text = SubstituteTags(task.when, when_scope);
    if (!text.ok())
      return absl::InvalidArgumentError(absl::StrCat("when: ", text.status().message()));
    absl::StatusOr<bool> holds = EvaluateWhen(*text);
    if (!holds.ok()) return holds.status();
    return *holds ? std::string() : absl::StrCat("when '", *text, "' evaluated false");
  };
  if (!fan_out) {
    absl::StatusOr<std::string> skipped = evaluate_when(scope);
    if (!skipped.ok()) return fail(std::string(skipped.status().message()));
    if (!skipped->empty()) {
      AddNode(node_name, task.name, parent, task.name, task.template_name, type,
              NodePhase::kSkipped, *std::move(skipped), now_ms);
      return;
    }
    CreateInstance(node_name, task.name, parent, task, *tmpl, scope, std::nullopt, depth, now_ms);
    return;
  }

  std::vector<nlohmann::json> items = task.with_items;
  if (task.with_sequence) {
    absl::StatusOr<std::vector<nlohmann::json>> sequence =
        internal::ExpandSequence(*task.with_sequence, scope);
    if (!sequence.ok()) return fail(std::string(sequence.status().message()));
    items = *std::move(sequence);
  } else if (items.empty()) {
    absl::StatusOr<std::string> text = SubstituteTags(task.with_param, scope);
    if (!text.ok()) return fail(absl::StrCat("withParam: ", text.status().message()));
    nlohmann::json list = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!list.is_array()) {
      return fail(absl::StrCat("withParam value could not be parsed as a JSON list: ", *text));
    }
    items.assign(list.begin(), list.end());
  }
  if (items.empty()) {
    AddNode(node_name, task.name, parent, task.name, task.template_name,
            in_steps ? NodeType::kPod : type, NodePhase::kSkipped, "Skipped, empty params", now_ms);
    return;
  }
  if (limits_.max_fanout > 0 && items.size() > limits_.max_fanout) {
    return fail(absl::StrCat("the fan-out has ", items.size(), " items; the limit is ",
                             limits_.max_fanout, " (dagd --max-fanout)"));
  }
  // Argo puts a steps fan-out's children straight into the step group.
  const std::string& children_parent = in_steps ? parent : node_name;
  if (!in_steps) {
    AddNode(node_name, task.name, parent, task.name, task.template_name, type, NodePhase::kRunning,
            "", now_ms);
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string suffix = absl::StrCat("(", i, ":", internal::ItemText(items[i]), ")");
    const TagScope item_scope = internal::WithItem(scope, items[i]);
    absl::StatusOr<std::string> skipped = evaluate_when(item_scope);
    if (!skipped.ok() || !skipped->empty()) {
      NodeState& child = AddNode(
          node_name + suffix, task.name + suffix, children_parent, task.name, task.template_name,
          TypeOf(tmpl), skipped.ok() ? NodePhase::kSkipped : NodePhase::kError,
          skipped.ok() ? *std::move(skipped) : std::string(skipped.status().message()), now_ms);
      child.item = items[i];
      continue;
    }
    CreateInstance(node_name + suffix, task.name + suffix, children_parent, task, *tmpl, item_scope,
                   items[i], depth, now_ms);
  }
  if (!in_steps) AssessGroup(node_name, now_ms);
}

void RunState::CreateInstance(const std::string& name, const std::string& display_name,
                              const std::string& parent, const DagTask& task, const Template& tmpl,
                              const std::map<std::string, std::string>& scope,
                              const std::optional<nlohmann::json>& item, int depth,
                              int64_t now_ms) {
  const NodeType type = TypeOf(&tmpl);
  std::string error;
  std::map<std::string, std::string> arguments;
  for (const Parameter& argument : task.arguments.parameters) {
    if (!argument.value) continue;
    if (NamesAbsentOutput(*argument.value, scope) && HasDefault(tmpl, argument.name)) continue;
    absl::StatusOr<std::string> value = SubstituteTags(*argument.value, scope);
    if (!value.ok()) {
      error = absl::StrCat("arguments.parameters.", argument.name, ": ", value.status().message());
      break;
    }
    arguments[argument.name] = *std::move(value);
  }
  const TagScope workflow_scope = RunScope();
  absl::StatusOr<std::map<std::string, std::string>> inputs;
  if (error.empty()) {
    inputs = internal::ResolveInputs(tmpl, arguments, workflow_scope);
    if (!inputs.ok()) error = std::string(inputs.status().message());
  }
  std::map<std::string, ArtifactRef> input_artifacts;
  if (error.empty() && IsLeaf(type)) {
    // Checked now so that a bad body fails the node before it is queued; Dispatch() resolves
    // it again from the stored inputs, which also works after a restart.
    const TagScope body_scope = internal::WithInputs(workflow_scope, *inputs);
    absl::StatusOr<Template> body = internal::ResolveTemplate(tmpl, body_scope, *inputs);
    if (!body.ok()) error = std::string(body.status().message());
    absl::StatusOr<std::map<std::string, ArtifactRef>> artifacts =
        ResolveInputArtifacts(tmpl, task.arguments.artifacts, scope, body_scope);
    if (error.empty() && !artifacts.ok()) error = std::string(artifacts.status().message());
    if (artifacts.ok()) input_artifacts = *std::move(artifacts);
  } else if (error.empty() && Composite(type)) {
    absl::StatusOr<std::map<std::string, ArtifactRef>> artifacts = ResolvePassedArtifacts(
        tmpl, task.arguments.artifacts, scope, internal::WithInputs(workflow_scope, *inputs));
    if (artifacts.ok()) input_artifacts = *std::move(artifacts);
    if (!artifacts.ok()) error = std::string(artifacts.status().message());
  }
  int64_t resume_at_ms = 0;
  if (error.empty() && type == NodeType::kSuspend) {
    absl::StatusOr<int64_t> until =
        SuspendUntil(tmpl, internal::WithInputs(workflow_scope, *inputs), now_ms);
    if (until.ok()) resume_at_ms = *until;
    if (!until.ok()) error = std::string(until.status().message());
  }
  // A dag or steps node starts Running, or Pending while its parent template is at its
  // parallelism (ProcessChild starts it when a slot frees). A suspend node is Running (waiting)
  // at once.
  const bool waits = error.empty() && Composite(type) && !parent.empty() &&
                     BoundaryFull(Composite(nodes_.at(parent).type) ? parent : BoundaryOf(parent));
  NodeState& node =
      AddNode(name, display_name, parent, task.name, tmpl.name, type,
              !error.empty()                                              ? NodePhase::kError
              : (Composite(type) && !waits) || type == NodeType::kSuspend ? NodePhase::kRunning
                                                                          : NodePhase::kPending,
              error, now_ms);
  node.item = item;
  node.resume_at_ms = resume_at_ms;
  if (inputs.ok()) node.inputs = *inputs;
  node.input_artifacts = std::move(input_artifacts);
  if (error.empty() && Composite(type)) ProcessChild(name, depth, now_ms);
}

void RunState::AssessGroup(const std::string& name, int64_t now_ms) {
  const NodeState& group = nodes_.at(name);
  std::vector<const NodeState*> children;
  const NodeState* culprit = nullptr;
  for (const std::string& child_name : group.children) {
    const NodeState& child = nodes_.at(child_name);
    if (!Settled(child_name)) return;
    children.push_back(&child);
    if (FailedOrError(child.phase)) culprit = &child;  // Argo: the last failed child wins
  }
  internal::FanIn fan_in = internal::AggregateOutputs(children);
  std::string message = culprit == nullptr ? "" : ChildFailureMessage(*culprit);
  const NodePhase phase = culprit == nullptr ? NodePhase::kSucceeded : culprit->phase;
  Mutable(name).outputs = std::move(fan_in.outputs);
  Finish(name, phase, std::move(message), now_ms);
}

void RunState::AssessDag(const std::string& name, const DagPlan& plan, int64_t now_ms) {
  const NodeState& dag = nodes_.at(name);
  for (const std::string& child : dag.children) {
    if (!Settled(child)) return;
  }
  if (StopHolds(name)) {
    Finish(name, NodePhase::kFailed, stop_message_, now_ms);
    return;
  }
  // Argo's assessDAGPhase. dag.failFast only changes which failure is reported and, in Argo,
  // whether tasks that never got a node count; new tasks are still started while anything in
  // the DAG runs (argoproj/argo-workflows#5223, left that way on purpose).
  const bool fail_fast = plan.tmpl->dag->fail_fast.value_or(true);
  NodePhase result = NodePhase::kSucceeded;
  const NodeState* culprit = nullptr;
  std::map<std::string, Branch> memo;
  for (const std::string& target : plan.targets) {
    Branch branch = BranchOf(nodes_, plan, name, target, &memo);
    if (!branch.known) {
      result = NodePhase::kRunning;
      if (!fail_fast) break;
    } else if (FailedOrError(branch.phase)) {
      if (ContinuesOn(*plan.tasks.at(target), branch.phase)) continue;
      result = branch.phase;
      culprit = branch.culprit;
      if (fail_fast) break;
    }
  }
  if (result == NodePhase::kRunning) return;
  if (result == NodePhase::kSucceeded && has_task_hooks_) {
    // A hook that ended in Error fails the DAG, whatever continueOn says (Argo v4.2).
    for (const std::string& child : dag.children) {
      if (const NodeState* hook = ErroredHook(nodes_.at(child)); hook != nullptr) {
        Finish(name, NodePhase::kFailed, HookFailureMessage(*hook), now_ms);
        return;
      }
    }
  }
  if (result == NodePhase::kSucceeded) {
    std::set<std::string> tasks;
    for (const auto& [task, unused] : plan.tasks) tasks.insert(task);
    SucceedWithOutputs(name, DagScope(name, tasks), now_ms);
    return;
  }
  Finish(name, result, culprit == nullptr ? "" : ChildFailureMessage(*culprit), now_ms);
}

void RunState::ProcessSteps(const std::string& name, int depth, int64_t now_ms) {
  if (IsFinal(nodes_.at(name).phase)) return;
  const std::string template_name = nodes_.at(name).template_name;
  const Template* tmpl = workflow_->FindTemplate(template_name);
  if (tmpl == nullptr || !tmpl->steps) {
    Finish(name, NodePhase::kError, absl::StrCat("steps template '", template_name, "' not found"),
           now_ms);
    return;
  }
  const std::vector<std::vector<DagTask>>& groups = tmpl->steps->groups;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string group_name = absl::StrCat(name, "[", g, "]");
    if (nodes_.count(group_name) == 0) {
      if (StopHolds(name)) {
        Finish(name, NodePhase::kFailed, stop_message_, now_ms);
        return;
      }
      AddNode(group_name, absl::StrCat("[", g, "]"), name, "", template_name, NodeType::kStepGroup,
              NodePhase::kRunning, "", now_ms);
      const TagScope scope = StepsScope(name, *tmpl->steps, g);
      for (const DagTask& step : groups[g]) {
        StartTask(group_name, step, scope, /*in_steps=*/true, depth, now_ms);
      }
    }
    for (const std::string& child : std::vector<std::string>(nodes_.at(group_name).children)) {
      ProcessChild(child, depth, now_ms);
    }
    AssessStepGroup(group_name, groups[g], now_ms);
    const NodeState& group = nodes_.at(group_name);
    if (!IsFinal(group.phase)) return;
    if (group.phase != NodePhase::kSucceeded) {
      Finish(name, NodePhase::kFailed, StopHolds(name) ? stop_message_ : group.message, now_ms);
      return;
    }
  }
  SucceedWithOutputs(name, StepsScope(name, *tmpl->steps, groups.size()), now_ms);
}

void RunState::AssessStepGroup(const std::string& name, const std::vector<DagTask>& steps,
                               int64_t now_ms) {
  const NodeState& group = nodes_.at(name);
  if (IsFinal(group.phase)) return;
  for (const std::string& child : group.children) {
    if (!Settled(child)) return;
  }
  // Argo's executeStepGroup: the first child that failed and may not continue fails the group.
  for (const std::string& child_name : group.children) {
    const NodeState& child = nodes_.at(child_name);
    if (!FailedOrError(child.phase)) continue;
    auto step = std::find_if(steps.begin(), steps.end(),
                             [&](const DagTask& s) { return s.name == child.task_name; });
    if (step != steps.end() && ContinuesOn(*step, child.phase)) continue;
    Finish(name, NodePhase::kFailed, ChildFailureMessage(child), now_ms);
    return;
  }
  // A hook that ended in Error fails the group, whatever continueOn says (Argo v4.2).
  for (const std::string& child : group.children) {
    if (const NodeState* hook = has_task_hooks_ ? ErroredHook(nodes_.at(child)) : nullptr) {
      Finish(name, NodePhase::kFailed, HookFailureMessage(*hook), now_ms);
      return;
    }
  }
  Finish(name, NodePhase::kSucceeded, "", now_ms);
}

void RunState::SucceedWithOutputs(const std::string& name, const TagScope& scope, int64_t now_ms) {
  const Template* tmpl = workflow_->FindTemplate(nodes_.at(name).template_name);
  NodeOutputs outputs;
  if (tmpl != nullptr) {
    for (const Parameter& output : tmpl->outputs.parameters) {
      std::optional<std::string> text;
      if (output.value_from && !output.value_from->parameter.empty()) {
        text = output.value_from->parameter;
      } else if (output.value) {
        text = output.value;
      }
      std::optional<std::string> value;
      absl::Status error;
      if (output.value_from && !output.value_from->expression.empty()) {
        absl::StatusOr<nlohmann::json> result =
            EvaluateExpression(output.value_from->expression, scope);
        if (result.ok() && !result->is_null()) {
          value = ExpressionValueText(*result);
        } else if (!result.ok()) {
          error = result.status();
        } else {
          error = absl::InvalidArgumentError(
              absl::StrCat("valueFrom.expression '", output.value_from->expression, "' gave nil"));
        }
      } else if (text) {
        absl::StatusOr<std::string> substituted = SubstituteTags(*text, scope);
        if (substituted.ok()) {
          value = *std::move(substituted);
        } else {
          error = substituted.status();
        }
      }
      if (!value && output.value_from) value = output.value_from->default_value;
      if (!value) value = output.default_value;
      if (!value) {
        if (error.ok()) continue;  // a source dagd does not read (yet): no value, as before
        Finish(name, NodePhase::kError,
               absl::StrCat("outputs.parameters.", output.name, ": ", error.message()), now_ms);
        return;
      }
      outputs.parameters[output.name] = *std::move(value);
    }
    for (const Artifact& output : tmpl->outputs.artifacts) {
      absl::StatusOr<std::string> key = absl::NotFoundError("no `from` or `fromExpression`");
      if (!output.from.empty()) {
        key = SubstituteTags(output.from, scope);
      } else if (!output.from_expression.empty()) {
        absl::StatusOr<nlohmann::json> chosen = EvaluateExpression(output.from_expression, scope);
        if (!chosen.ok()) {
          key = chosen.status();
        } else if (chosen->is_string()) {
          key = chosen->get<std::string>();
        } else {
          key = absl::InvalidArgumentError(absl::StrCat("fromExpression '", output.from_expression,
                                                        "' does not name an artifact"));
        }
      }
      if (key.ok()) {
        outputs.artifacts[output.name] = *std::move(key);
      } else if (!output.optional) {
        Finish(name, NodePhase::kError,
               absl::StrCat("outputs.artifacts.", output.name, ": ", key.status().message()),
               now_ms);
        return;
      }
    }
  }
  Mutable(name).outputs = std::move(outputs);
  Finish(name, NodePhase::kSucceeded, "", now_ms);
}

TagScope RunState::DagScope(const std::string& dag_name, const std::set<std::string>& tasks) const {
  // A DAG's own inputs are in scope for its tasks' arguments, as Argo substitutes them into the
  // whole dag template before running it.
  TagScope scope = BodyScope(nodes_.at(dag_name));
  for (const std::string& task : tasks) {
    auto it = nodes_.find(dag_name + "." + task);
    if (it == nodes_.end()) continue;
    const NodeState& node = it->second;
    if (node.type != NodeType::kTaskGroup) {
      AddToScope("tasks." + task, node, nullptr, &scope);
      continue;
    }
    std::vector<const NodeState*> children;
    for (const std::string& child : node.children) children.push_back(&nodes_.at(child));
    AddToScope("tasks." + task, node, &children, &scope);
  }
  return scope;
}

TagScope RunState::StepsScope(const std::string& steps_name, const StepsTemplate& steps,
                              size_t group) const {
  TagScope scope = BodyScope(nodes_.at(steps_name));
  for (size_t g = 0; g < group && g < steps.groups.size(); ++g) {
    const std::string group_name = absl::StrCat(steps_name, "[", g, "]");
    if (nodes_.count(group_name) == 0) continue;
    for (const DagTask& step : steps.groups[g]) {
      const std::string prefix = "steps." + step.name;
      auto single = nodes_.find(group_name + "." + step.name);
      if (single != nodes_.end()) {  // not a fan-out, or one with no items
        AddToScope(prefix, single->second, nullptr, &scope);
        continue;
      }
      std::vector<const NodeState*> children;
      for (const std::string& child : nodes_.at(group_name).children) {
        const NodeState& node = nodes_.at(child);
        if (node.task_name == step.name) children.push_back(&node);
      }
      if (!children.empty()) AddToScope(prefix, *children.front(), &children, &scope);
    }
  }
  return scope;
}

void RunState::AddToScope(const std::string& prefix, const NodeState& node,
                          const std::vector<const NodeState*>* children, TagScope* scope) const {
  TagScope& out = *scope;
  if (children != nullptr) {
    // A dag fan-out's status is its TaskGroup's; a steps fan-out has no node of its own.
    if (node.type == NodeType::kTaskGroup) out[prefix + ".status"] = NodePhaseName(node.phase);
    internal::FanIn fan_in = internal::AggregateOutputs(*children);
    out[prefix + ".outputs.result"] = *fan_in.outputs.result;
    out[prefix + ".outputs.parameters"] = fan_in.parameter_maps;
    for (const auto& [param, values] : fan_in.outputs.parameters) {
      out[prefix + ".outputs.parameters." + param] = values;
    }
    return;
  }
  out[prefix + ".status"] = NodePhaseName(node.phase);
  out[prefix + ".id"] = node.name;
  if (SkippedOrOmitted(node.phase)) {
    // Argo: a producer that did not run has no outputs, except parameters with a default.
    const Template* tmpl = workflow_->FindTemplate(node.template_name);
    if (tmpl == nullptr) return;
    for (const Parameter& output : tmpl->outputs.parameters) {
      std::optional<std::string> fallback =
          output.value_from ? output.value_from->default_value : std::nullopt;
      if (!fallback) fallback = output.default_value;
      if (fallback) out[prefix + ".outputs.parameters." + output.name] = *fallback;
    }
    return;
  }
  if (node.outputs.result) out[prefix + ".outputs.result"] = *node.outputs.result;
  for (const auto& [param, value] : node.outputs.parameters) {
    out[prefix + ".outputs.parameters." + param] = value;
  }
  for (const auto& [artifact, key] : node.outputs.artifacts) {
    out[prefix + ".outputs.artifacts." + artifact] = key;
  }
  if (!node.attempts.empty()) {
    out[prefix + ".exitCode"] = std::to_string(node.attempts.back().exit_code);
  }
}

TagScope RunState::BodyScope(const NodeState& node) const {
  TagScope scope = internal::WithInputs(RunScope(), node.inputs);
  for (const auto& [name, ref] : node.input_artifacts) {
    if (!ref.raw && ref.sub_path.empty()) scope["inputs.artifacts." + name] = ref.key;
  }
  return scope;
}

TagScope RunState::RunScope() const {
  TagScope scope = internal::WorkflowScope(*workflow_, parameters_, run_name_);
  scope["workflow.uid"] = run_name_;
  for (const auto& [name, value] : global_outputs_) scope["workflow.outputs." + name] = value;
  auto root = nodes_.find(run_name_);
  if (root == nodes_.end() || !IsFinal(root->second.phase)) {
    scope["workflow.status"] = NodePhaseName(NodePhase::kRunning);
    // Create() asks before the root node exists.
    if (root != nodes_.end()) {
      scope["workflow.creationTimestamp"] = internal::Rfc3339(root->second.started_at_ms);
    }
    return scope;
  }
  scope["workflow.creationTimestamp"] = internal::Rfc3339(root->second.started_at_ms);
  scope["workflow.status"] = NodePhaseName(root->second.phase);
  scope["workflow.duration"] =
      FormatSeconds(root->second.finished_at_ms - root->second.started_at_ms);
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& [name, node] : nodes_) {
    if (!FailedOrError(node.phase)) continue;
    failures.push_back({{"displayName", node.display_name},
                        {"message", node.message},
                        {"templateName", node.template_name},
                        {"phase", NodePhaseName(node.phase)},
                        {"podName", node.name},
                        {"finishedAt", internal::Rfc3339(node.finished_at_ms)}});
  }
  // Invalid UTF-8 (in a message) replaced by U+FFFD, as Go's encoding/json does.
  scope["workflow.failures"] =
      failures.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return scope;
}

// ---- template parallelism -----------------------------------------------------------------

std::optional<int64_t> RunState::ParallelismOf(const std::string& boundary) const {
  auto it = nodes_.find(boundary);
  if (it == nodes_.end()) return std::nullopt;
  const Template* tmpl = workflow_->FindTemplate(it->second.template_name);
  if (tmpl == nullptr || !tmpl->parallelism || *tmpl->parallelism <= 0) return std::nullopt;
  return tmpl->parallelism;
}

std::string RunState::BoundaryOf(const std::string& name) const {
  const NodeState* node = &nodes_.at(name);
  while (true) {
    auto parent = nodes_.find(node->parent);
    if (parent == nodes_.end()) return "";
    if (Composite(parent->second.type)) return parent->first;
    node = &parent->second;
  }
}

bool RunState::BoundaryFull(const std::string& boundary) const {
  const std::optional<int64_t> limit = ParallelismOf(boundary);
  if (!limit) return false;
  int64_t count = 0;
  std::function<void(const std::string&)> walk = [&](const std::string& name) {
    for (const std::string& child : nodes_.at(name).children) {
      const NodeState& node = nodes_.at(child);
      if (AttemptRunning(node)) {
        ++count;
      } else if (Composite(node.type)) {
        if (node.phase == NodePhase::kRunning) ++count;
      } else {
        walk(child);  // a group, or the exit hook under a pod
      }
    }
  };
  walk(boundary);
  return count >= *limit;
}

// ---- exit hooks ---------------------------------------------------------------------------

const DagTask* RunState::TaskOf(const NodeState& node) const {
  if (node.task_name.empty() || node.type == NodeType::kTaskGroup) return nullptr;
  // The nearest dag or steps node above `node` holds the task.
  const NodeState* owner = &node;
  do {
    auto parent = nodes_.find(owner->parent);
    if (parent == nodes_.end()) return nullptr;
    owner = &parent->second;
  } while (!Composite(owner->type));
  const Template* tmpl = workflow_->FindTemplate(owner->template_name);
  if (tmpl == nullptr) return nullptr;
  if (tmpl->dag) {
    for (const DagTask& task : tmpl->dag->tasks) {
      if (task.name == node.task_name) return &task;
    }
  }
  if (tmpl->steps) {
    for (const std::vector<DagTask>& group : tmpl->steps->groups) {
      for (const DagTask& step : group) {
        if (step.name == node.task_name) return &step;
      }
    }
  }
  return nullptr;
}

namespace {

// Whether a hook's `expression` holds in `scope`, read after substitution as Argo does.
absl::StatusOr<bool> HookDue(const LifecycleHook& hook, const TagScope& scope) {
  if (hook.expression.empty()) return true;
  absl::StatusOr<std::string> text = SubstituteTags(hook.expression, scope);
  if (!text.ok()) return text.status();
  absl::StatusOr<nlohmann::json> value = EvaluateExpression(*text, scope);
  if (!value.ok()) return value.status();
  if (!value->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expression '", *text, "' gave ", ExpressionValueText(*value), ", not true or false"));
  }
  return value->get<bool>();
}

}  // namespace

bool RunState::Settled(const std::string& name) const {
  const NodeState& node = nodes_.at(name);
  if (!IsFinal(node.phase)) return false;
  if (!has_task_hooks_) return true;
  const DagTask* task = TaskOf(node);
  if (task == nullptr) return true;
  for (const LifecycleHook& hook : task->hooks) {
    auto started = nodes_.find(HookNodeName(name, hook.name));
    if (started != nodes_.end() && !IsFinal(started->second.phase)) return false;
  }
  if (!task->exit_hook || !Completed(node.phase)) return true;  // Skipped, Omitted: no exit hook
  auto exit = nodes_.find(name + ".onExit");
  if (exit != nodes_.end()) return IsFinal(exit->second.phase);
  if (StopHolds(name + ".onExit")) return true;  // it will not start: stopped
  if (task->exit_hook->expression.empty()) return false;
  absl::StatusOr<bool> due = HookDue(*task->exit_hook, HookScope(node));
  return due.ok() && !*due;  // one that does not evaluate starts, as an Error node
}

TagScope RunState::HookScope(const NodeState& node) const {
  const NodeState* owner = &nodes_.at(node.parent);
  while (!Composite(owner->type)) owner = &nodes_.at(owner->parent);
  const Template* tmpl = workflow_->FindTemplate(owner->template_name);
  const std::string prefix =
      absl::StrCat(owner->type == NodeType::kDag ? "tasks." : "steps.", node.task_name);
  TagScope scope;
  if (tmpl != nullptr && tmpl->dag) {
    std::set<std::string> tasks;
    for (const DagTask& task : tmpl->dag->tasks) tasks.insert(task.name);
    scope = DagScope(owner->name, tasks);
  } else if (tmpl != nullptr && tmpl->steps) {
    scope = StepsScope(owner->name, *tmpl->steps, tmpl->steps->groups.size());
  } else {
    scope = BodyScope(*owner);
  }
  // The node itself, not its fan-out's aggregate.
  for (auto it = scope.lower_bound(prefix + ".");
       it != scope.end() && absl::StartsWith(it->first, prefix + ".");) {
    it = scope.erase(it);
  }
  AddToScope(prefix, node, nullptr, &scope);
  if (node.item) scope = internal::WithItem(std::move(scope), *node.item);
  return scope;
}

void RunState::StartHook(const std::string& name, const std::string& display_name,
                         const std::string& parent, const std::string& task_name,
                         const LifecycleHook& hook, const TagScope& scope, int depth,
                         int64_t now_ms) {
  auto error = [&](std::string message) {
    AddNode(name, display_name, parent, task_name, hook.template_name, NodeType::kPod,
            NodePhase::kError, std::move(message), now_ms);
  };
  absl::StatusOr<bool> due = HookDue(hook, scope);
  if (!due.ok()) {
    return error(absl::StrCat("hooks.", hook.name, ".expression: ", due.status().message()));
  }
  if (!*due) return;
  const Template* tmpl = workflow_->FindTemplate(hook.template_name);
  if (tmpl == nullptr) return error(absl::StrCat("template '", hook.template_name, "' not found"));
  DagTask call;
  call.name = task_name;  // not a task of the template: hooks have no hooks
  call.template_name = hook.template_name;
  call.arguments = hook.arguments;
  CreateInstance(name, display_name, parent, call, *tmpl, scope, std::nullopt, depth, now_ms);
}

void RunState::ProcessHooks(const std::string& name, int depth, int64_t now_ms) {
  if (!has_task_hooks_) return;
  const DagTask* task = TaskOf(nodes_.at(name));
  if (task == nullptr) return;
  const std::string exit_name = name + ".onExit";
  const bool exit_started = nodes_.count(exit_name) > 0;
  std::optional<TagScope> scope;  // built when first needed
  bool hooks_running = false;
  for (const LifecycleHook& hook : task->hooks) {
    const std::string hook_name = HookNodeName(name, hook.name);
    if (nodes_.count(hook_name) == 0) {
      if (StopHolds(name) || exit_started) continue;
      if (!scope) scope = HookScope(nodes_.at(name));
      const NodeState& node = nodes_.at(name);
      StartHook(hook_name, HookNodeName(node.display_name, hook.name), name,
                HookNodeName(node.task_name, hook.name), hook, *scope, depth, now_ms);
      if (nodes_.count(hook_name) == 0) continue;
    } else {
      ProcessChild(hook_name, depth, now_ms);
    }
    hooks_running |= !IsFinal(nodes_.at(hook_name).phase);
  }
  if (exit_started) {
    ProcessChild(exit_name, depth, now_ms);
    return;
  }
  const NodeState& node = nodes_.at(name);
  if (!task->exit_hook || hooks_running || StopHolds(exit_name) || !Completed(node.phase)) return;
  if (!scope) scope = HookScope(node);
  StartHook(exit_name, node.display_name + ".onExit", name, node.task_name + ".onExit",
            *task->exit_hook, *scope, depth, now_ms);
}

const NodeState* RunState::ErroredHook(const NodeState& node) const {
  if (node.type == NodeType::kTaskGroup) {  // a dag fan-out: its children have the hooks
    for (const std::string& child : node.children) {
      if (const NodeState* hook = ErroredHook(nodes_.at(child))) return hook;
    }
    return nullptr;
  }
  const DagTask* task = TaskOf(node);
  if (task == nullptr) return nullptr;
  std::vector<std::string> names;
  for (const LifecycleHook& hook : task->hooks) names.push_back(HookNodeName(node.name, hook.name));
  names.push_back(node.name + ".onExit");
  for (const std::string& name : names) {
    auto hook = nodes_.find(name);
    if (hook != nodes_.end() && hook->second.phase == NodePhase::kError) return &hook->second;
  }
  return nullptr;
}

void RunState::ProcessWorkflowHooks(int64_t now_ms) {
  if (workflow_->hooks.empty()) return;
  const bool exit_started = nodes_.count(WorkflowExitNodeName()) > 0;
  std::optional<TagScope> scope;
  for (const LifecycleHook& hook : workflow_->hooks) {
    const std::string name = HookNodeName(run_name_, hook.name);
    if (nodes_.count(name) > 0) {
      ProcessChild(name, -1, now_ms);
      continue;
    }
    if (stopping_ || exit_started) continue;
    if (!scope) scope = RunScope();
    StartHook(name, name, "", "hooks." + hook.name, hook, *scope, -1, now_ms);
  }
}

bool RunState::WorkflowExitHookDue() const {
  if (!workflow_->exit_hook) return false;
  absl::StatusOr<bool> due = HookDue(*workflow_->exit_hook, RunScope());
  return !due.ok() || *due;  // one that does not evaluate starts, as an Error node
}

void RunState::ProcessWorkflowExitHook(int64_t now_ms) {
  if (!workflow_->exit_hook || !IsFinal(nodes_.at(run_name_).phase)) return;
  const std::string hook_name = WorkflowExitNodeName();
  if (nodes_.count(hook_name) > 0) {
    ProcessChild(hook_name, -1, now_ms);
    return;
  }
  if (StopHolds(hook_name)) return;
  for (const LifecycleHook& hook : workflow_->hooks) {  // they end first
    auto started = nodes_.find(HookNodeName(run_name_, hook.name));
    if (started != nodes_.end() && !IsFinal(started->second.phase)) return;
  }
  StartHook(hook_name, hook_name, "", "onExit", *workflow_->exit_hook, RunScope(), -1, now_ms);
}

// ---- attempts -----------------------------------------------------------------------------

std::vector<DispatchRequest> RunState::Advance(int64_t now_ms) {
  std::vector<DispatchRequest> requests;
  waiting_for_locks_ = false;
  if (!HoldWorkflowLocks(now_ms)) return requests;
  // Dispatch() may settle nodes (an Error at launch), which may create new ones (an exit hook, a
  // dependent task): go round until a pass creates no node.
  for (size_t known = 0; known != nodes_.size();) {
    known = nodes_.size();
    Propagate(now_ms);
    std::vector<DispatchRequest> launched = Dispatch(now_ms);
    // The pods just launched are Running now: a hook waiting for that starts in one more pass.
    if (has_lifecycle_hooks_ && !launched.empty()) known = 0;
    for (DispatchRequest& request : launched) requests.push_back(std::move(request));
  }
  return requests;
}

absl::StatusOr<std::vector<std::string>> RunState::LockKeysOf(const Synchronization& sync,
                                                              const TagScope& scope) const {
  std::vector<std::string> mutexes, semaphores;
  for (const std::string& name : sync.mutexes) {
    ASSIGN_OR_RETURN(mutexes.emplace_back(), SubstituteTags(name, scope));
  }
  for (const std::string& name : sync.semaphores) {
    ASSIGN_OR_RETURN(semaphores.emplace_back(), SubstituteTags(name, scope));
  }
  std::vector<std::string> keys = LockKeys(mutexes, semaphores);
  for (const std::string& key : keys) {
    if (std::string unknown = locks_->Unknown(key); !unknown.empty()) {
      return absl::FailedPreconditionError(unknown);
    }
  }
  return keys;
}

bool RunState::HoldWorkflowLocks(int64_t now_ms) {
  if (workflow_locks_held_ || !workflow_->synchronization || locks_ == nullptr || Done()) {
    return true;
  }
  absl::StatusOr<std::vector<std::string>> keys =
      LockKeysOf(*workflow_->synchronization, RunScope());
  if (!keys.ok()) {
    Finish(run_name_, NodePhase::kError,
           absl::StrCat("spec.synchronization: ", keys.status().message()), now_ms);
    return false;
  }
  if (std::string busy = locks_->FirstBusy(run_name_, *keys); !busy.empty()) {
    const std::string message = "Waiting for lock: " + locks_->Describe(busy);
    if (nodes_.at(run_name_).message != message) Mutable(run_name_).message = message;
    waiting_for_locks_ = true;
    return false;
  }
  locks_->Hold(run_name_, *keys);
  workflow_locks_held_ = true;
  if (absl::StartsWith(nodes_.at(run_name_).message, "Waiting for lock")) {
    Mutable(run_name_).message.clear();
  }
  return true;
}

std::vector<std::pair<std::string, std::vector<std::string>>> RunState::HeldLocks() const {
  std::vector<std::pair<std::string, std::vector<std::string>>> held;
  if (locks_ == nullptr) return held;
  if (workflow_locks_held_ && workflow_->synchronization && !Done()) {
    auto keys = LockKeysOf(*workflow_->synchronization, RunScope());
    if (keys.ok()) held.emplace_back(run_name_, *std::move(keys));
  }
  for (const auto& [name, node] : nodes_) {
    if (!AttemptRunning(node)) continue;
    const Template* tmpl = workflow_->FindTemplate(node.template_name);
    if (tmpl == nullptr || !tmpl->synchronization) continue;
    auto keys = LockKeysOf(*tmpl->synchronization, BodyScope(node));
    if (keys.ok()) held.emplace_back(name, *std::move(keys));
  }
  return held;
}

std::vector<DispatchRequest> RunState::Dispatch(int64_t now_ms) {
  std::vector<DispatchRequest> requests;
  if (stopping_ && stop_strategy_ != StopStrategy::kStop) return requests;
  // Running attempts in the whole run (spec.parallelism) and active children per dag or steps
  // node (its template's parallelism).
  struct Candidate {
    std::string name;
    std::string boundary;  // the nearest dag or steps node above it
  };
  std::vector<Candidate> candidates;
  std::map<std::string, int64_t> active;
  int64_t running_total = 0;
  std::function<void(const std::string&, const std::string&)> walk =
      [&](const std::string& name, const std::string& boundary) {
        const NodeState& node = nodes_.at(name);
        if (AttemptRunning(node)) {
          ++running_total;
          ++active[boundary];
        } else if ((Queued(node) || (WaitingForRetry(node) && node.retry_at_ms <= now_ms)) &&
                   !StopHolds(name)) {
          candidates.push_back({name, boundary});
        } else if (Composite(node.type) && node.phase == NodePhase::kRunning) {
          ++active[boundary];
        }
        // Under a final node only an exit hook may still run.
        if (IsFinal(node.phase) && !has_task_hooks_) return;
        const std::string& inner = Composite(node.type) ? name : boundary;
        for (const std::string& child : node.children) walk(child, inner);
      };
  walk(run_name_, "");
  for (const LifecycleHook& hook : workflow_->hooks) {
    if (nodes_.count(HookNodeName(run_name_, hook.name)) > 0) {
      walk(HookNodeName(run_name_, hook.name), "");
    }
  }
  if (nodes_.count(WorkflowExitNodeName()) > 0) walk(WorkflowExitNodeName(), "");

  const std::optional<int64_t>& run_limit = workflow_->parallelism;
  for (const Candidate& candidate : candidates) {
    if (run_limit && *run_limit > 0 && running_total >= *run_limit) break;
    const std::optional<int64_t> limit = ParallelismOf(candidate.boundary);
    if (limit && active[candidate.boundary] >= *limit) continue;
    const NodeState& waiting = nodes_.at(candidate.name);
    const Template* tmpl = workflow_->FindTemplate(waiting.template_name);
    if (tmpl == nullptr) {
      Finish(candidate.name, NodePhase::kError,
             absl::StrCat("template '", waiting.template_name, "' not found"), now_ms);
      continue;
    }
    if (waiting.attempts.empty() && FinishFromCache(candidate.name, now_ms)) continue;
    // A node waiting for a lock is left as it is (no change to commit) unless its message
    // changes.
    if (tmpl->synchronization && locks_ != nullptr) {
      absl::StatusOr<std::vector<std::string>> keys =
          LockKeysOf(*tmpl->synchronization, BodyScope(waiting));
      if (!keys.ok()) {
        Finish(candidate.name, NodePhase::kError,
               absl::StrCat("synchronization: ", keys.status().message()), now_ms);
        continue;
      }
      if (std::string busy = locks_->FirstBusy(candidate.name, *keys); !busy.empty()) {
        const std::string message = "Waiting for lock: " + locks_->Describe(busy);
        if (waiting.message != message) Mutable(candidate.name).message = message;
        waiting_for_locks_ = true;
        continue;
      }
      locks_->Hold(candidate.name, *keys);
    }
    NodeState& node = Mutable(candidate.name);
    absl::StatusOr<Template> resolved =
        internal::ResolveTemplate(*tmpl, BodyScope(node), node.inputs);
    if (!resolved.ok()) {
      if (locks_ != nullptr) locks_->Release(candidate.name);
      Finish(candidate.name, NodePhase::kError, std::string(resolved.status().message()), now_ms);
      continue;
    }
    // Artifacts: where the inputs come from (resolved when the node was created) and where the
    // outputs go.
    for (Artifact& input : resolved->inputs.artifacts) {
      auto ref = node.input_artifacts.find(input.name);
      input.key = ref == node.input_artifacts.end() ? "" : ref->second.key;
      input.sub_path = ref == node.input_artifacts.end() ? "" : ref->second.sub_path;
      if (ref != node.input_artifacts.end() && ref->second.raw) input.raw = ref->second.raw;
    }
    for (Artifact& output : resolved->outputs.artifacts) {
      if (!output.key.empty()) continue;
      output.key = absl::StrCat(run_name_, "/", ArtifactNodeDir(run_name_, candidate.name), "/",
                                output.name, output.archive_none ? "" : ".tgz");
    }
    AttemptRecord attempt;
    attempt.number = static_cast<int>(node.attempts.size()) + 1;
    attempt.started_at_ms = now_ms;
    node.attempts.push_back(attempt);
    node.phase = NodePhase::kRunning;
    node.message.clear();
    node.retry_at_ms = 0;
    requests.push_back({candidate.name, attempt.number, *std::move(resolved), node.inputs});
    ++running_total;
    ++active[candidate.boundary];
  }
  // Nodes that ended in Error here may settle their DAGs.
  Propagate(now_ms);
  return requests;
}

bool RunState::OnAttemptFinished(const std::string& node_name, int attempt,
                                 const AttemptResult& result, int64_t now_ms) {
  auto it = nodes_.find(node_name);
  if (it == nodes_.end() || !AttemptRunning(it->second) ||
      attempt != static_cast<int>(it->second.attempts.size())) {
    return false;
  }
  if (locks_ != nullptr) locks_->Release(node_name);  // a retry takes its locks again
  NodeState& node = Mutable(node_name);
  AttemptRecord& record = node.attempts.back();
  // A runner reports Succeeded, Failed or Error; anything else is treated as an Error.
  record.phase = result.phase == NodePhase::kSucceeded || result.phase == NodePhase::kFailed
                     ? result.phase
                     : NodePhase::kError;
  record.exit_code = result.exit_code;
  record.message = result.message;
  record.finished_at_ms = now_ms;
  if (record.phase == NodePhase::kSucceeded) {
    node.outputs.result = result.result;
    node.outputs.parameters = result.parameters;
    node.outputs.artifacts = result.artifacts;
    if (const Template* tmpl = workflow_->FindTemplate(node.template_name)) {
      for (const Parameter& output : tmpl->outputs.parameters) {
        if (node.outputs.parameters.count(output.name) > 0) continue;
        std::optional<std::string> fallback =
            output.value_from ? output.value_from->default_value : std::nullopt;
        if (!fallback) fallback = output.default_value;
        if (fallback) node.outputs.parameters[output.name] = *fallback;
      }
    }
    Finish(node_name, NodePhase::kSucceeded, "", now_ms);
  } else {
    ApplyRetryStrategy(node_name, now_ms);
  }
  Propagate(now_ms);
  return true;
}

void RunState::ApplyRetryStrategy(const std::string& name, int64_t now_ms) {
  const NodeState& node = nodes_.at(name);
  const AttemptRecord& last = node.attempts.back();
  const Template* tmpl = workflow_->FindTemplate(node.template_name);
  if (StopHolds(name)) {
    // The caller cancelled it; like Argo, the node tells why rather than how the process died.
    Finish(name, last.phase, stop_message_, now_ms);
    return;
  }
  if (tmpl == nullptr || !tmpl->retry_strategy ||
      !Retries(tmpl->retry_strategy->policy, last.phase)) {
    Finish(name, last.phase, last.message, now_ms);
    return;
  }
  const RetryStrategy& strategy = *tmpl->retry_strategy;
  auto bad_strategy = [&](absl::string_view field, absl::string_view why) {
    Finish(name, NodePhase::kError, absl::StrCat("retryStrategy.", field, ": ", why), now_ms);
  };
  if (!strategy.expression.empty()) {
    // Argo's lastRetry.* describe the attempt that just ended.
    TagScope scope = BodyScope(node);
    scope["lastRetry.exitCode"] = std::to_string(last.exit_code);
    scope["lastRetry.status"] = NodePhaseName(last.phase);
    scope["lastRetry.duration"] = std::to_string((last.finished_at_ms - last.started_at_ms) / 1000);
    scope["lastRetry.message"] = last.message;
    absl::StatusOr<nlohmann::json> retry = EvaluateExpression(strategy.expression, scope);
    if (!retry.ok()) return bad_strategy("expression", retry.status().message());
    if (!retry->is_boolean()) {
      return bad_strategy("expression", absl::StrCat("gave ", retry->dump(), ", not a boolean"));
    }
    if (!retry->get<bool>()) {
      Finish(name, last.phase, "retryStrategy.expression evaluated to false", now_ms);
      return;
    }
  }

  std::optional<int64_t> limit;  // unset: Argo retries without end
  if (!strategy.limit.empty()) {
    absl::StatusOr<std::string> text = SubstituteTags(strategy.limit, BodyScope(node));
    if (!text.ok()) return bad_strategy("limit", text.status().message());
    int64_t value = 0;
    auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (error != std::errc() || end != text->data() + text->size()) {
      return bad_strategy("limit", absl::StrCat("\"", *text, "\" is not an integer"));
    }
    limit = value;
  }

  // Backoff and maxDuration first, then the limit: the order of Argo's processNodeRetries.
  int64_t wait_ms = 0;
  if (strategy.backoff) {
    const Backoff& backoff = *strategy.backoff;
    std::optional<int64_t> deadline_ms;
    if (!backoff.max_duration.empty()) {
      absl::StatusOr<int64_t> max = ParseDurationMs(backoff.max_duration);
      if (!max.ok()) return bad_strategy("backoff.maxDuration", max.status().message());
      deadline_ms = node.attempts.front().started_at_ms + *max;
      if (now_ms > *deadline_ms) {
        Finish(name, last.phase, "Max duration limit exceeded", now_ms);
        return;
      }
    }
    if (!backoff.duration.empty()) {
      absl::StatusOr<int64_t> base = ParseDurationMs(backoff.duration);
      if (!base.ok()) return bad_strategy("backoff.duration", base.status().message());
      const double factor = backoff.factor > 0 ? backoff.factor : 1;
      // Retry n (1-based) waits duration * factor^(n-1); n equals the attempts made so far.
      wait_ms =
          static_cast<int64_t>(static_cast<double>(*base) *
                               std::pow(factor, static_cast<double>(node.attempts.size() - 1)));
    }
    if (deadline_ms && now_ms + wait_ms > *deadline_ms) {
      Finish(name, last.phase, "Backoff would exceed max duration limit", now_ms);
      return;
    }
  }
  if (limit && static_cast<int64_t>(node.attempts.size()) > *limit) {
    Finish(name, last.phase,
           absl::StrCat("No more retries left", last.message.empty() ? "" : ": ", last.message),
           now_ms);
    return;
  }
  NodeState& waiting = Mutable(name);
  waiting.retry_at_ms = now_ms + wait_ms;
  waiting.message = wait_ms > 0 ? absl::StrCat("Backoff for ", FormatDurationMs(wait_ms)) : "";
}

bool RunState::SetAttemptRunner(const std::string& node_name, int attempt,
                                const std::string& runner, const std::string& external_name) {
  auto it = nodes_.find(node_name);
  if (it == nodes_.end() || attempt < 1 || attempt > static_cast<int>(it->second.attempts.size())) {
    return false;
  }
  AttemptRecord& record = Mutable(node_name).attempts[attempt - 1];
  record.runner = runner;
  record.external_name = external_name;
  return true;
}

// ---- stop and queries ---------------------------------------------------------------------

bool RunState::StopHolds(const std::string& name) const {
  if (!stopping_) return false;
  if (stop_strategy_ != StopStrategy::kStop) return true;
  // Argo's stop: exit hooks, and whatever runs under them, still run.
  for (std::string node = name; !node.empty();) {
    if (absl::EndsWith(node, ".onExit")) return false;
    auto it = nodes_.find(node);
    if (it == nodes_.end()) break;
    node = it->second.parent;
  }
  return true;
}

void RunState::Stop(const std::string& message, int64_t now_ms, StopStrategy strategy) {
  if (Done() || strategy == StopStrategy::kNone) return;
  // A terminate after a stop ends the exit hooks that the stop let run.
  if (stopping_ &&
      (stop_strategy_ == StopStrategy::kTerminate || strategy == StopStrategy::kStop)) {
    return;
  }
  stopping_ = true;
  stop_strategy_ = strategy;
  stop_message_ = message;
  Mutable(run_name_).message = message;
  if (!workflow_locks_held_ && workflow_->synchronization && locks_ != nullptr) {
    Finish(run_name_, NodePhase::kFailed, message, now_ms);  // it never started
    return;
  }
  std::vector<std::string> to_end;
  for (const auto& [name, node] : nodes_) {
    if ((Queued(node) || WaitingForRetry(node) ||
         (Composite(node.type) && node.phase == NodePhase::kPending) ||
         (node.type == NodeType::kSuspend && node.phase == NodePhase::kRunning)) &&
        StopHolds(name)) {
      to_end.push_back(name);
    }
  }
  for (const std::string& name : to_end) {
    const NodeState& node = nodes_.at(name);
    // Argo: a waiting retry ends in its last attempt's phase; a node never started, Failed.
    Finish(name, node.attempts.empty() ? NodePhase::kFailed : node.attempts.back().phase, message,
           now_ms);
  }
  Propagate(now_ms);
}

// ---- retry --------------------------------------------------------------------------------

absl::Status RunState::Retry(const std::set<std::string>& restart) {
  const std::string exit_node = WorkflowExitNodeName();
  const auto exit_it = nodes_.find(exit_node);
  if (!Done() || (exit_it != nodes_.end() && !IsFinal(exit_it->second.phase))) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_name_, " is still running; stop it first, or wait for its end"));
  }
  for (const std::string& name : restart) {
    if (nodes_.count(name) == 0) {
      return absl::NotFoundError(absl::StrCat("run ", run_name_, " has no node ", name));
    }
  }
  if (nodes_.at(run_name_).phase == NodePhase::kSucceeded && restart.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_name_, " succeeded: there is nothing to retry (name nodes to run again)"));
  }
  // Which nodes go: those that did not succeed, the restarted ones, and everything under them.
  std::set<std::string> removed;
  std::function<void(const std::string&)> remove_tree = [&](const std::string& name) {
    if (!removed.insert(name).second) return;
    for (const std::string& child : nodes_.at(name).children) remove_tree(child);
  };
  for (const auto& [name, node] : nodes_) {
    const bool kept = node.phase == NodePhase::kSucceeded || node.phase == NodePhase::kSkipped;
    if (restart.count(name) > 0 || (!kept && (!Composite(node.type) || node.children.empty()))) {
      remove_tree(name);
    }
  }
  if (exit_it != nodes_.end()) remove_tree(exit_node);
  // A fan-out's group or a steps group creates its children all at once: one that lost any goes
  // as a whole, and runs again.
  for (bool grew = true; grew;) {
    grew = false;
    for (const std::string& name : std::set<std::string>(removed)) {
      for (std::string parent = nodes_.at(name).parent; !parent.empty();
           parent = nodes_.at(parent).parent) {
        const NodeType type = nodes_.at(parent).type;
        if ((type == NodeType::kTaskGroup || type == NodeType::kStepGroup) &&
            removed.count(parent) == 0) {
          remove_tree(parent);
          grew = true;
        }
      }
    }
  }
  // The dag and steps nodes above what goes, and those that did not succeed, run again.
  std::set<std::string> reopened;
  for (const std::string& name : std::set<std::string>(removed)) {
    for (std::string parent = nodes_.at(name).parent; !parent.empty();
         parent = nodes_.at(parent).parent) {
      if (removed.count(parent) == 0) reopened.insert(parent);
    }
  }
  for (const auto& [name, node] : nodes_) {
    if (Composite(node.type) && removed.count(name) == 0 && !IsFinal(node.phase)) continue;
    if (Composite(node.type) && removed.count(name) == 0 && node.phase != NodePhase::kSucceeded &&
        node.phase != NodePhase::kSkipped) {
      reopened.insert(name);
    }
  }
  // The root stays, and runs again (a root pod takes a next attempt rather than being removed).
  removed.erase(run_name_);
  reopened.insert(run_name_);
  for (const std::string& name : reopened) {
    NodeState& node = Mutable(name);
    std::vector<std::string> children;
    for (const std::string& child : node.children) {
      if (removed.count(child) == 0) children.push_back(child);
    }
    node.children = std::move(children);
    // A root pod with attempts waits for its next one, as between retries.
    node.phase =
        Composite(node.type) || !node.attempts.empty() ? NodePhase::kRunning : NodePhase::kPending;
    node.message.clear();
    node.finished_at_ms = 0;
    node.retry_at_ms = 0;
  }
  for (const std::string& name : removed) {
    nodes_.erase(name);
    changed_.erase(name);
    removed_.insert(name);
  }
  stopping_ = false;
  stop_strategy_ = StopStrategy::kNone;
  stop_message_.clear();
  // The run gave its workflow locks back when it ended: it takes them again before going on.
  workflow_locks_held_ = false;
  global_outputs_.clear();
  std::vector<const NodeState*> succeeded;
  for (const auto& [name, node] : nodes_) {
    if (node.phase == NodePhase::kSucceeded) succeeded.push_back(&node);
  }
  std::stable_sort(succeeded.begin(), succeeded.end(), [](const NodeState* a, const NodeState* b) {
    return a->finished_at_ms < b->finished_at_ms;
  });
  for (const NodeState* node : succeeded) RecordGlobalOutputs(*node);
  return absl::OkStatus();
}

absl::StatusOr<RunState> RunState::ResubmitFrom(std::shared_ptr<const Workflow> workflow,
                                                std::map<std::string, std::string> parameters,
                                                std::string run_name, const std::string& from_run,
                                                std::vector<NodeState> nodes) {
  // "<from_run>", "<from_run>.x", "<from_run>[0].x" → the same under the new name.
  auto rename = [&](std::string* name) {
    if (*name == from_run) {
      *name = run_name;
    } else if (absl::StartsWith(*name, from_run) &&
               ((*name)[from_run.size()] == '.' || (*name)[from_run.size()] == '[')) {
      *name = run_name + name->substr(from_run.size());
    }
  };
  for (const NodeState& node : nodes) {
    if (node.name == from_run && node.phase == NodePhase::kSucceeded) {
      return absl::FailedPreconditionError(
          absl::StrCat("run ", from_run,
                       " succeeded: a memoized resubmit would run nothing; resubmit it without "
                       "memoized"));
    }
  }
  for (NodeState& node : nodes) {
    if (node.display_name == node.name) rename(&node.display_name);  // root, workflow hook
    rename(&node.name);
    rename(&node.parent);
    for (std::string& child : node.children) rename(&child);
  }
  ASSIGN_OR_RETURN(RunState state,
                   Restore(std::move(workflow), std::move(parameters), std::move(run_name),
                           std::move(nodes), StopStrategy::kNone));
  RETURN_IF_ERROR(state.Retry({}));
  state.removed_.clear();  // never stored
  for (const auto& [name, node] : state.nodes_) state.changed_.insert(name);
  return state;
}

std::vector<std::string> RunState::TakeRemovedNodes() {
  std::vector<std::string> names(removed_.begin(), removed_.end());
  removed_.clear();
  return names;
}

// ---- suspend ------------------------------------------------------------------------------

absl::StatusOr<int64_t> RunState::SuspendUntil(const Template& tmpl, const TagScope& scope,
                                               int64_t now_ms) const {
  if (!tmpl.suspend || tmpl.suspend->duration.empty()) return 0;
  ASSIGN_OR_RETURN(const std::string text, SubstituteTags(tmpl.suspend->duration, scope));
  absl::StatusOr<int64_t> ms = ParseDurationMs(text);
  if (!ms.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("suspend.duration: ", ms.status().message()));
  }
  // At least 1 ms, so that resume_at_ms > 0 marks a timed suspend.
  return now_ms + std::max<int64_t>(*ms, 1);
}

absl::Status RunState::CheckSuspended(const std::string& node_name) const {
  auto it = nodes_.find(node_name);
  if (it == nodes_.end()) {
    return absl::NotFoundError(absl::StrCat("run ", run_name_, " has no node ", node_name));
  }
  if (it->second.type != NodeType::kSuspend) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", it->second.display_name, " is a ", NodeTypeName(it->second.type),
                     " node, not a suspend node; only suspend templates wait to be resumed"));
  }
  if (it->second.phase != NodePhase::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat("node ", it->second.display_name,
                                                      " is not suspended: it is already ",
                                                      NodePhaseName(it->second.phase)));
  }
  if (StopHolds(node_name)) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_name_, " is stopping; its suspended nodes end Failed"));
  }
  return absl::OkStatus();
}

void RunState::FinishSuspended(const std::string& name, int64_t now_ms) {
  NodeState& node = Mutable(name);
  const Template* tmpl = workflow_->FindTemplate(node.template_name);
  if (tmpl != nullptr) {
    for (const Parameter& output : tmpl->outputs.parameters) {
      if (node.outputs.parameters.count(output.name) > 0) continue;  // supplied
      std::optional<std::string> value;
      if (output.value_from && output.value_from->default_value) {
        value = output.value_from->default_value;
      } else if (output.default_value) {
        value = output.default_value;
      } else if (output.value) {
        value = output.value;
      } else if (auto input = node.inputs.find(output.name); input != node.inputs.end()) {
        value = input->second;
      }
      if (!value) {
        Finish(name, NodePhase::kError,
               absl::StrCat("output parameter '", output.name,
                            "' was not supplied and has no default; supply it when resuming "
                            "(dagctl set RUN NODE --output-parameter ",
                            output.name, "=VALUE --phase Succeeded)"),
               now_ms);
        return;
      }
      node.outputs.parameters[output.name] = *std::move(value);
    }
  }
  node.resume_at_ms = 0;
  Finish(name, NodePhase::kSucceeded, "", now_ms);
}

absl::Status RunState::Resume(const std::string& node_name, int64_t now_ms) {
  if (!node_name.empty()) {
    RETURN_IF_ERROR(CheckSuspended(node_name));
    FinishSuspended(node_name, now_ms);
    return absl::OkStatus();
  }
  std::vector<std::string> suspended;
  for (const auto& [name, node] : nodes_) {
    if (node.type == NodeType::kSuspend && node.phase == NodePhase::kRunning && !StopHolds(name)) {
      suspended.push_back(name);
    }
  }
  if (suspended.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run_name_, " has no suspended node to resume"));
  }
  for (const std::string& name : suspended) FinishSuspended(name, now_ms);
  return absl::OkStatus();
}

absl::Status RunState::SetSuspendedNode(const std::string& node_name,
                                        const std::map<std::string, std::string>& outputs,
                                        std::optional<NodePhase> phase, const std::string& message,
                                        int64_t now_ms) {
  RETURN_IF_ERROR(CheckSuspended(node_name));
  if (phase && *phase != NodePhase::kSucceeded && *phase != NodePhase::kFailed &&
      *phase != NodePhase::kError) {
    return absl::InvalidArgumentError(
        absl::StrCat("phase: a suspended node can be set Succeeded, Failed or Error, not ",
                     NodePhaseName(*phase)));
  }
  const Template* tmpl = workflow_->FindTemplate(nodes_.at(node_name).template_name);
  std::vector<std::string> supplied;
  if (tmpl != nullptr) {
    for (const Parameter& output : tmpl->outputs.parameters) {
      if (output.value_from && output.value_from->supplied) supplied.push_back(output.name);
    }
  }
  for (const auto& [name, value] : outputs) {
    if (std::find(supplied.begin(), supplied.end(), name) != supplied.end()) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "output parameter '", name, "': template '", nodes_.at(node_name).template_name,
        "' declares no such output with valueFrom.supplied",
        supplied.empty() ? std::string("; it declares none")
                         : absl::StrCat("; it has: ", absl::StrJoin(supplied, ", "))));
  }
  NodeState& node = Mutable(node_name);
  for (const auto& [name, value] : outputs) node.outputs.parameters[name] = value;
  if (!phase) return absl::OkStatus();
  if (*phase == NodePhase::kSucceeded) {
    FinishSuspended(node_name, now_ms);
  } else {
    node.resume_at_ms = 0;
    Finish(node_name, *phase, message, now_ms);
  }
  return absl::OkStatus();
}

std::optional<int64_t> RunState::DeadlineMs() const {
  if (!workflow_->active_deadline_seconds) return std::nullopt;
  return nodes_.at(run_name_).started_at_ms + *workflow_->active_deadline_seconds * 1000;
}

std::optional<int64_t> RunState::NextWakeup() const {
  std::optional<int64_t> earliest;
  if (Done() || (stopping_ && stop_strategy_ != StopStrategy::kStop)) return earliest;
  if (!stopping_) earliest = DeadlineMs();
  for (const auto& [name, node] : nodes_) {
    if (StopHolds(name)) continue;
    if (WaitingForRetry(node) && (!earliest || node.retry_at_ms < *earliest)) {
      earliest = node.retry_at_ms;
    }
    if (node.type == NodeType::kSuspend && node.phase == NodePhase::kRunning &&
        node.resume_at_ms > 0 && (!earliest || node.resume_at_ms < *earliest)) {
      earliest = node.resume_at_ms;
    }
  }
  return earliest;
}

std::vector<std::pair<std::string, int>> RunState::RunningAttempts() const {
  std::vector<std::pair<std::string, int>> running;
  for (const auto& [name, node] : nodes_) {
    if (AttemptRunning(node)) running.emplace_back(name, node.attempts.back().number);
  }
  return running;
}

absl::StatusOr<DispatchRequest> RunState::RunningDispatch(const std::string& node_name) const {
  auto it = nodes_.find(node_name);
  if (it == nodes_.end() || !AttemptRunning(it->second)) {
    return absl::NotFoundError(absl::StrCat("node ", node_name, " has no running attempt"));
  }
  const NodeState& node = it->second;
  const Template* tmpl = workflow_->FindTemplate(node.template_name);
  if (tmpl == nullptr) {
    return absl::NotFoundError(absl::StrCat("template '", node.template_name, "' not found"));
  }
  ASSIGN_OR_RETURN(Template resolved,
                   internal::ResolveTemplate(*tmpl, BodyScope(node), node.inputs));
  return DispatchRequest{node_name, node.attempts.back().number, std::move(resolved), node.inputs};
}

bool RunState::Done() const { return IsFinal(phase()); }

const NodeState* RunState::WorkflowHookFailure() const {
  for (const LifecycleHook& hook : workflow_->hooks) {
    auto node = nodes_.find(HookNodeName(run_name_, hook.name));
    if (node != nodes_.end() && node->second.phase == NodePhase::kError) return &node->second;
  }
  auto exit = nodes_.find(WorkflowExitNodeName());
  if (exit != nodes_.end() && FailedOrError(exit->second.phase)) return &exit->second;
  return nullptr;
}

NodePhase RunState::phase() const {
  const NodeState& root = nodes_.at(run_name_);
  if (!IsFinal(root.phase)) return root.phase;
  for (const LifecycleHook& hook : workflow_->hooks) {
    auto node = nodes_.find(HookNodeName(run_name_, hook.name));
    if (node != nodes_.end() && !IsFinal(node->second.phase)) return NodePhase::kRunning;
  }
  if (workflow_->exit_hook) {
    auto exit = nodes_.find(WorkflowExitNodeName());
    if (exit == nodes_.end() && !StopHolds(WorkflowExitNodeName()) && WorkflowExitHookDue()) {
      return NodePhase::kRunning;
    }
    if (exit != nodes_.end() && !IsFinal(exit->second.phase)) return NodePhase::kRunning;
  }
  // Argo: a run whose entrypoint succeeded takes the failure of its exit handler; dagd also that
  // of a workflow hook that errored.
  const NodeState* failure = WorkflowHookFailure();
  if (!FailedOrError(root.phase) && failure != nullptr) {
    return failure->name == WorkflowExitNodeName() ? failure->phase : NodePhase::kFailed;
  }
  return root.phase;
}

std::string RunState::message() const {
  const NodeState& root = nodes_.at(run_name_);
  const NodeState* failure = WorkflowHookFailure();
  if (IsFinal(root.phase) && !FailedOrError(root.phase) && failure != nullptr) {
    if (failure->name != WorkflowExitNodeName()) return HookFailureMessage(*failure);
    return absl::StrCat("exit handler: ", ChildFailureMessage(*failure));
  }
  return root.message;
}

std::vector<std::string> RunState::TakeChangedNodes() {
  std::vector<std::string> names(changed_.begin(), changed_.end());
  changed_.clear();
  return names;
}

}  // namespace dagd::engine
