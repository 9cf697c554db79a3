// RunState: the deterministic state machine of one workflow run.
//
// It owns the run's node tree (Argo's nodes: DAGs, task groups of fan-outs, Steps with their
// StepGroups, leaf "pod" nodes), decides which leaf attempts may start, applies `depends` /
// `dependencies`, fan-out and fan-in, retries with backoff, workflow parallelism, stop and
// terminate, and Argo's rule that a DAG's phase comes from its target tasks. It performs no I/O and
// reads no clock: the caller passes the time in. The scheduler (scheduler/) drives it on one
// strand; it is not thread-safe.
//
// Protocol, per run:
//   1. Create() (new run) or Restore() (after a restart, from the stored NodeStates).
//   2. Advance(now): returns the leaf attempts to launch. Each returned attempt is already
//      recorded in its node (phase Running, an AttemptRecord in phase Running): the caller commits
//      TakeChangedNodes() before it launches anything (DESIGN.md §3, rule 2).
//   3. OnAttemptFinished(...) for every launched attempt, then Advance(now) again.
//   4. NextWakeup(): the earliest time a retry backoff ends; the caller calls Advance() then.
//   5. Done() once the root node is final.
//
// Semantics follow Argo's controller (workflow/controller/dag.go, operator.go); where dagd
// differs or Argo leaves a choice, it is said here:
// - A task gets its node the moment every task its depends mentions has a final node: Omitted
//   ("omitted: depends condition not met") if the expression is false, Error if its arguments,
//   inputs or template body do not resolve, otherwise Pending (a pod waiting for a launch slot)
//   or Running (a nested DAG, a fan-out TaskGroup). Tasks that are neither targets nor ancestors
//   of targets never get a node, as in Argo.
// - `when` is evaluated after substitution (engine/when.h), per item for a fan-out: false gives a
//   Skipped node "when 'X' evaluated false", a condition that does not evaluate an Error node.
// - A suspend template's node (type Suspend) is Running from its creation until Resume() or
//   SetSuspendedNode() ends it, or its `duration` has passed (then Succeeded); Stop() ends it
//   Failed. Its outputs are the values supplied for them (valueFrom.supplied), or their defaults.
// - Steps (Argo's executeSteps): group i+1 starts once every node of group i is final and none
//   Failed or Errored without continueOn; otherwise the StepGroup and the Steps node fail and
//   later groups never start. Nodes are named as Argo names them: "<steps>[i]" for a group,
//   "<steps>[i].step" for a step, and a step's fan-out children "<steps>[i].step(0:item)" sit
//   directly under the group (no TaskGroup). `{{steps.X.…}}` reads the steps of earlier groups.
// - Outputs of a Skipped or Omitted producer are absent, except output parameters with a
//   `default`; an argument that names such an absent output is dropped, so the consumer's input
//   default applies (Argo's skipped-output rules).
// - Hooks of a task or step (Argo v4.2's rules). A lifecycle hook `hooks.NAME` runs as the child
//   "<node>.hooks.NAME" of each node of the task (each item of a fan-out) as soon as its
//   `expression` holds, at most once. The expression is evaluated, after substitution, on every
//   pass from the node's creation until its exit hook starts or its DAG or Steps node ends; it
//   sees `tasks.X.…` / `steps.X.…` of every task or step of its template (its own node as
//   `tasks.<task>` / `steps.<step>`, so `steps['a'].status == "Running"` works), `workflow.…`,
//   inputs and `item`. The exit hook (`hooks.exit` / `onExit`) runs as the child
//   "<node>.onExit" once the node has run (Succeeded, Failed or Error), its lifecycle hooks that
//   started have ended and its `expression`, if any, holds. A node counts as finished for its
//   dependents, its group and its DAG only when every hook it started has ended. A hook that ends
//   Failed changes nothing else; one that ends Error (an expression or template that does not
//   resolve, say) fails the DAG or StepGroup of its task, whatever continueOn says, unless that
//   already failed otherwise.
// - Workflow hooks. spec.hooks.NAME runs as the parentless node "<run>.hooks.NAME" once its
//   expression holds, evaluated on every pass until the workflow's exit hook starts (with
//   `workflow.status` "Running", then the root's phase once it is final). The workflow's exit hook
//   (spec.onExit / spec.hooks.exit) runs as the parentless node "<run>.onExit" once the root
//   node is final and the workflow hooks that started have ended. The run is Running until
//   all of them have ended; a failed exit hook, or a workflow hook ending Error, fails a run
//   whose root Succeeded (Argo's rule for exit handlers). `{{workflow.status}}` is "Running"
//   until the root is final and its phase after; `{{workflow.failures}}` (JSON) and
//   `{{workflow.duration}}` (seconds) exist once it is. After Stop() no lifecycle hook starts;
//   exit hooks start only after Argo's stop (StopStrategy::kStop), not after its terminate.
// - A dag or steps template's outputs.parameters (valueFrom.parameter, value, default) are read
//   when its node succeeds, from its tasks' or steps' outputs.
// - Artifacts are keys into dagd's artifact store (the runner moves the files). A pod node's
//   input artifacts are resolved when the node is created: the argument's `from` (a tag naming
//   an output artifact), key or raw data (spec.arguments.artifacts for the entrypoint), else
//   the input's own key or raw data; a missing one is an Error unless `optional`. Output artifacts
//   without a key are stored at
//   "<run>/<node id>/<name>[.tgz]"; {{tasks.X.outputs.artifacts.Y}} is that key. A dag or
//   steps template's output artifacts come from `from` or `fromExpression` when it succeeds.
//   Outputs with a `globalName` are also {{workflow.outputs.parameters|artifacts.<name>}}.
// - Memoization (`memoize`, with SetMemoCache()): a pod node is looked up when it is about to
//   launch its first attempt, a dag or steps node before it creates its first child; a hit ends
//   it Succeeded with the cached outputs and the message "Memoized: …"; a node that succeeds is
//   stored under its key (a hit is not stored again, so maxAge counts from the run that
//   computed it, as in Argo).
// - dag.failFast (default true) does not stop tasks from starting while anything in the DAG
//   still runs — Argo's actual behaviour (argoproj/argo-workflows#5223); the DAG's phase is
//   decided by its targets once nothing in it is unfinished (Argo's assessDAGPhase).
// - A pod node waiting for a retry stays Running, with retry_at_ms set and its last attempt
//   final. Retries are checked in the order policy, maxDuration/backoff, limit; an unset limit
//   retries without end, as in Argo.
// - The only state is the nodes: Restore() from the stored NodeStates continues exactly where
//   the run was.
#ifndef DAGD_ENGINE_RUN_STATE_H_
#define DAGD_ENGINE_RUN_STATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/locks.h"
#include "engine/tags.h"
#include "engine/workflow.h"

namespace dagd::engine {

namespace internal {
struct DagPlan;
}  // namespace internal
class MemoCache;

// How a run is being ended (StopRun / TerminateRun): Argo's `stop` still runs exit hooks, its
// `terminate` does not.
enum class StopStrategy { kNone, kTerminate, kStop };

// kRetry is a leaf like kPod, for a template with a retryStrategy: Argo shows such a node as a
// Retry node whose children "<node>(0)", "<node>(1)", … are its attempts; dagd keeps the
// attempts in the node and shows them that way (server/convert.h).
enum class NodeType { kDag, kTaskGroup, kPod, kSteps, kStepGroup, kSuspend, kRetry };
// "DAG", "TaskGroup", "Pod", "Steps", "StepGroup", "Suspend", "Retry"
const char* NodeTypeName(NodeType type);
// A node a runner executes, attempt by attempt: kPod or kRetry.
inline bool IsLeaf(NodeType type) { return type == NodeType::kPod || type == NodeType::kRetry; }
// Parses NodeTypeName()'s spelling; false if unknown.
bool ParseNodeType(const std::string& text, NodeType* type);

// One try of a leaf node.
struct AttemptRecord {
  int number = 0;                         // 1-based
  NodePhase phase = NodePhase::kRunning;  // Running until finished
  std::string runner;                     // filled by the scheduler when it launches
  std::string external_name;
  int exit_code = -1;
  std::string message;
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
};

// Where an input artifact comes from: its key in dagd's artifact store and, optionally, a path
// inside it (`subPath`); or, for raw data passed as an argument, that data.
struct ArtifactRef {
  std::string key;
  std::string sub_path;
  std::optional<std::string> raw;
  bool operator==(const ArtifactRef&) const = default;
};

struct NodeOutputs {
  std::map<std::string, std::string> parameters;
  std::optional<std::string> result;
  std::map<std::string, std::string> artifacts;  // by name: the key in dagd's artifact store
  // Fan-out groups aggregate their children's outputs as JSON lists (Argo's fan-in).
};

struct NodeState {
  std::string name;          // unique in the run: "<run>", "<run>.task", "<run>.task(0:a)"
  std::string display_name;  // "task", "task(0:a)"
  std::string parent;        // parent node's name; empty for the root
  std::string task_name;     // the dag task or step this node is for; empty for root and groups
  std::string template_name;
  NodeType type = NodeType::kPod;
  NodePhase phase = NodePhase::kPending;
  std::string message;
  std::map<std::string, std::string> inputs;           // resolved input parameters
  std::map<std::string, ArtifactRef> input_artifacts;  // resolved input artifacts, by name
  NodeOutputs outputs;
  std::vector<AttemptRecord> attempts;  // leaf nodes only, oldest first
  std::vector<std::string> children;    // child node names, in creation order
  std::optional<nlohmann::json> item;   // the withItems/withParam value of a fan-out child
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  int64_t retry_at_ms = 0;   // >0 while the node waits for a retry backoff to end
  int64_t resume_at_ms = 0;  // a suspend node with a duration: when it resumes by itself
};

// What a runner reports when an attempt ends.
struct AttemptResult {
  NodePhase phase = NodePhase::kSucceeded;  // Succeeded, Failed or Error
  int exit_code = -1;
  std::string message;
  std::optional<std::string> result;              // outputs.result (stdout, trimmed)
  std::map<std::string, std::string> parameters;  // outputs.parameters, by name
  std::map<std::string, std::string> artifacts;   // outputs.artifacts saved, by name: their keys
};

// A leaf attempt to launch. `resolved` is the node's template with every dagd tag substituted
// ({{inputs.…}}, {{workflow.…}}, {{item}}, …); Jinja2 tags are left as written.
struct DispatchRequest {
  std::string node_name;
  int attempt = 1;
  Template resolved;
  std::map<std::string, std::string> inputs;
};

// Bounds on what one run may grow to; 0: none. A node past max_nodes is created in phase
// Error, saying so (and its DAG or step group fails as for any Error); a fan-out of more than
// max_fanout items is an Error node of its own. dagd's --max-nodes-per-run and --max-fanout.
struct RunLimits {
  size_t max_nodes = 0;
  size_t max_fanout = 0;
};

class RunState {
 public:
  // Starts a run of `workflow` (already validated by ValidateWorkflow) with `parameters` (already
  // merged with defaults by ResolveWorkflowArguments). Creates the root node for the entrypoint.
  static absl::StatusOr<RunState> Create(std::shared_ptr<const Workflow> workflow,
                                         std::map<std::string, std::string> parameters,
                                         std::string run_name, int64_t now_ms);

  // Rebuilds a run from stored nodes. Attempts still Running stay Running: the caller decides
  // (reattach, or report them finished with phase Error through OnAttemptFinished).
  static absl::StatusOr<RunState> Restore(std::shared_ptr<const Workflow> workflow,
                                          std::map<std::string, std::string> parameters,
                                          std::string run_name, std::vector<NodeState> nodes,
                                          StopStrategy stop);

  // Moves the run forward at `now_ms` and returns the attempts to launch now, at most as many as
  // workflow/template parallelism allows (spec.parallelism caps running attempts in the run; a
  // dag or steps template's `parallelism` caps its active children — pods, and nested dag or
  // steps nodes counted as one each — as Argo's controller does); the others stay Pending for a
  // later call. Once Stop() was called, nothing is returned but the exit hooks Argo's stop lets
  // run.
  std::vector<DispatchRequest> Advance(int64_t now_ms);

  // Records the end of an attempt returned by Advance(). Applies the retry strategy: either
  // schedules a retry (retry_at_ms = now + backoff) or gives the node its final phase, and
  // settles what that decides (dependents Omitted, DAG phases) without launching anything.
  // Unknown node or attempt numbers, or an attempt no longer running, are ignored (false).
  bool OnAttemptFinished(const std::string& node_name, int attempt, const AttemptResult& result,
                         int64_t now_ms);

  // Records who runs an attempt (for history and reattachment). Returns false if unknown.
  bool SetAttemptRunner(const std::string& node_name, int attempt, const std::string& runner,
                        const std::string& external_name);

  // Stop / terminate (Argo's semantics): no new node starts; Pending nodes end Failed and waiting
  // retries end in their last attempt's phase, both with `message`; running attempts are ended
  // by the caller (those StopHolds() for), which reports each through OnAttemptFinished (the node
  // then carries `message`). Once none runs, every unfinished DAG ends Failed with `message`, and
  // so does the run. Tasks that had no node get none. With kStop (Argo's `stop`), exit hooks
  // — of the workflow, and of tasks and steps that have run — still start and run to their end,
  // with whatever runs under them; lifecycle hooks do not. With kTerminate none starts. A second
  // Stop() changes nothing, except a kTerminate after a kStop, which ends the exit hooks too.
  void Stop(const std::string& message, int64_t now_ms,
            StopStrategy strategy = StopStrategy::kTerminate);
  // Whether Stop() holds for the node `name`: false before a stop, and after a kStop for exit
  // hooks and the nodes under them. The caller cancels the running attempts it holds for.
  bool StopHolds(const std::string& name) const;
  StopStrategy stop_strategy() const { return stop_strategy_; }

  // Argo's retry of a finished run: every node that did not succeed (Failed, Error, Omitted, and
  // nodes stopped before they ran) is removed, together with what is under it, and so is the
  // workflow's exit hook; the dag, steps and group nodes above them are Running again, and a
  // root pod that failed waits for a next attempt (its attempts kept, numbering on). Succeeded and
  // Skipped nodes keep their outputs and are not run again, except those named in `restart`
  // (node names), which are removed too. Advance() then runs what is missing.
  // FailedPrecondition if the run is not finished, or Succeeded and `restart` is empty;
  // NotFound for a name in `restart` that is no node of the run. Nothing changes on error.
  // The run takes its workflow-level locks again before it goes on.
  absl::Status Retry(const std::set<std::string>& restart);

  // Names of nodes Retry() removed since the last call: the caller deletes them from the store
  // with the changed nodes.
  std::vector<std::string> TakeRemovedNodes();

  // Argo's `resubmit --memoized`: a new run `run_name` of `workflow` that starts from the nodes
  // of the finished run `from_run` (renamed into the new run), less what Retry() would run
  // again. Every node is reported by TakeChangedNodes(). Errors as Restore() and Retry().
  static absl::StatusOr<RunState> ResubmitFrom(std::shared_ptr<const Workflow> workflow,
                                               std::map<std::string, std::string> parameters,
                                               std::string run_name, const std::string& from_run,
                                               std::vector<NodeState> nodes);

  // Suspended nodes (type Suspend, Running) and what ends them. Resume(): the node `node_name`,
  // or with "" every suspended node, ends Succeeded with its outputs: each output parameter takes
  // the value supplied for it (SetSuspendedNode), else its default, else the node's input of the
  // same name; one with none of these ends the node in Error naming it. NotFound for an unknown
  // node; FailedPrecondition when it (or, for "", every node) is not suspended, or after Stop().
  // Call Advance() after either, to move the run on.
  absl::Status Resume(const std::string& node_name, int64_t now_ms);
  // Argo's `node set`: stores `outputs` (only outputs declared `valueFrom.supplied`, else
  // InvalidArgument naming the declared ones) on the suspended node `node_name`; then with
  // `phase` Succeeded resumes it (as Resume), with Failed or Error ends it so with `message`
  // (any other phase is InvalidArgument). Errors otherwise as Resume(); on error nothing changes.
  absl::Status SetSuspendedNode(const std::string& node_name,
                                const std::map<std::string, std::string>& outputs,
                                std::optional<NodePhase> phase, const std::string& message,
                                int64_t now_ms);

  // The table of `synchronization` locks shared with other runs (not owned; must outlive this
  // run). Without one, synchronization is not enforced. A pod whose template has locks starts
  // only once it holds all of them (until its attempt ends; a retry takes them again); a
  // workflow with spec.synchronization starts nothing until the run holds its locks (until the
  // run is done). Waiting nodes keep their phase with the message "Waiting for lock: …"; a
  // semaphore the table has no limit for ends the node (or run) in Error naming the fix.
  void SetLockTable(LockTable* locks) { locks_ = locks; }
  // The memoization caches every run of this dagd shares (engine/memo.h); may stay null (then
  // `memoize` is ignored). Not owned; must outlive this run.
  void SetMemoCache(MemoCache* memo) { memo_ = memo; }
  // Whether the last Advance() left something waiting for a lock: call Advance() again when
  // the table has released one.
  bool waiting_for_locks() const { return waiting_for_locks_; }
  // The locks this run holds by its state (holder, lock keys): for rebuilding the table after
  // Restore() (LockTable::Hold).
  std::vector<std::pair<std::string, std::vector<std::string>>> HeldLocks() const;

  // Earliest retry_at_ms among waiting nodes or resume_at_ms among suspended ones, or the
  // workflow's deadline, if any.
  std::optional<int64_t> NextWakeup() const;

  // When the run must end under spec.activeDeadlineSeconds (counted from the root node's start),
  // if it has one. The caller stops the run then (Stop(), as Argo fails a workflow past its
  // deadline) and ends the running attempts.
  std::optional<int64_t> DeadlineMs() const;

  // Leaf attempts currently Running: (node name, attempt number).
  std::vector<std::pair<std::string, int>> RunningAttempts() const;

  // The DispatchRequest of the running attempt of `node_name`, as Advance() returned it when it
  // was launched (resolution is deterministic): for reattaching after a restart. NotFound if the
  // node has no running attempt; a template that no longer resolves gives that error.
  absl::StatusOr<DispatchRequest> RunningDispatch(const std::string& node_name) const;

  // The run is over: the root node and the workflow's exit hook, if any, are final.
  bool Done() const;
  // The run's phase and message: the root node's, Running while the workflow's exit hook runs,
  // and the exit hook's failure if the root Succeeded.
  NodePhase phase() const;
  std::string message() const;
  bool stopping() const { return stopping_; }
  const std::string& run_name() const { return run_name_; }
  const std::map<std::string, NodeState>& nodes() const { return nodes_; }

  // Names of nodes changed since the last call (created or modified), each once.
  std::vector<std::string> TakeChangedNodes();

  // Applies from the next node created on (Create() has made the root by then).
  void SetLimits(RunLimits limits) { limits_ = limits; }

 private:
  RunState() = default;

  void BuildPlans();
  const internal::DagPlan* PlanFor(const std::string& template_name) const;
  // Every change to a node goes through here, so TakeChangedNodes() sees it.
  NodeState& Mutable(const std::string& name);
  NodeState& AddNode(const std::string& name, const std::string& display_name,
                     const std::string& parent, const std::string& task_name,
                     const std::string& template_name, NodeType type, NodePhase phase,
                     std::string message, int64_t now_ms);
  void Finish(const std::string& name, NodePhase phase, std::string message, int64_t now_ms);

  // Creates the nodes that became due and settles groups and DAGs, without launching anything.
  void Propagate(int64_t now_ms);
  void ProcessDag(const std::string& name, int depth, int64_t now_ms);
  void ProcessSteps(const std::string& name, int depth, int64_t now_ms);
  // ProcessNode() then ProcessHooks().
  void ProcessChild(const std::string& name, int depth, int64_t now_ms);
  void ProcessNode(const std::string& name, int depth, int64_t now_ms);
  // Creates the node(s) of `task` (a dag task or a step) under `parent`, reading its arguments,
  // when and loop in `scope`. A dag fan-out gets a TaskGroup node "<parent>.<task>" above its
  // children; a steps fan-out (`in_steps`) puts its children directly under `parent`.
  void StartTask(const std::string& parent, const DagTask& task, const TagScope& scope,
                 bool in_steps, int depth, int64_t now_ms);
  void CreateInstance(const std::string& name, const std::string& display_name,
                      const std::string& parent, const DagTask& task, const Template& tmpl,
                      const std::map<std::string, std::string>& scope,
                      const std::optional<nlohmann::json>& item, int depth, int64_t now_ms);
  void AssessGroup(const std::string& name, int64_t now_ms);
  void AssessDag(const std::string& name, const internal::DagPlan& plan, int64_t now_ms);
  void AssessStepGroup(const std::string& name, const std::vector<DagTask>& steps, int64_t now_ms);
  // Finishes a dag or steps node Succeeded with its template's outputs read in `scope`, or in
  // Error naming the output that does not resolve.
  void SucceedWithOutputs(const std::string& name, const TagScope& scope, int64_t now_ms);
  // The scope of a dag's tasks: its inputs plus `{{tasks.X.…}}` of each of `tasks` that has a
  // node.
  TagScope DagScope(const std::string& dag_name, const std::set<std::string>& tasks) const;
  // The scope of the steps of group `group`: its inputs plus `{{steps.X.…}}` of every step of
  // the groups before it (all groups: group == groups.size()).
  TagScope StepsScope(const std::string& steps_name, const StepsTemplate& steps,
                      size_t group) const;
  // Adds `prefix`.status, .outputs.…, .exitCode of `node`; for a fan-out, `children` are its
  // children and the outputs are their fan-in.
  void AddToScope(const std::string& prefix, const NodeState& node,
                  const std::vector<const NodeState*>* children, TagScope* scope) const;
  TagScope BodyScope(const NodeState& node) const;
  // The workflow's tags: WorkflowScope plus workflow.status, .failures, .duration,
  // .creationTimestamp and .uid, from the root node.
  TagScope RunScope() const;

  // Hooks. The task or step `node` was created for (nullptr for roots, groups and hooks).
  const DagTask* TaskOf(const NodeState& node) const;
  // `node` is final and so is every hook it started or still has to start.
  bool Settled(const std::string& name) const;
  // What a hook of the node `node` sees: its template's tasks or steps, itself, its item.
  TagScope HookScope(const NodeState& node) const;
  // Starts the lifecycle hooks of `name` that are due and its exit hook once it is, and moves
  // started ones forward.
  void ProcessHooks(const std::string& name, int depth, int64_t now_ms);
  // Creates the node `name` of `hook` under `parent` if its expression holds in `scope` (an Error
  // node if that does not evaluate).
  void StartHook(const std::string& name, const std::string& display_name,
                 const std::string& parent, const std::string& task_name, const LifecycleHook& hook,
                 const TagScope& scope, int depth, int64_t now_ms);
  // A hook of the task node `node` (or of a fan-out's child under it) that ended in Error.
  const NodeState* ErroredHook(const NodeState& node) const;
  void ProcessWorkflowHooks(int64_t now_ms);
  void ProcessWorkflowExitHook(int64_t now_ms);
  // Whether the workflow's exit hook is to run once the root is final (its expression holds).
  bool WorkflowExitHookDue() const;
  // The workflow hook that ended in Error, else the exit hook if it Failed or errored, else null.
  const NodeState* WorkflowHookFailure() const;
  std::string WorkflowExitNodeName() const { return run_name_ + ".onExit"; }
  // "<owner>.hooks.<hook>": the node of a lifecycle hook.
  static std::string HookNodeName(const std::string& owner, const std::string& hook) {
    return owner + ".hooks." + hook;
  }

  // Template parallelism, counted as Argo does: the active children of a dag or steps node (pods
  // with a running attempt, dag or steps nodes Running), not the pods nested deeper.
  std::optional<int64_t> ParallelismOf(const std::string& boundary) const;
  // The nearest dag or steps node above `name` ("" for the roots).
  std::string BoundaryOf(const std::string& name) const;
  bool BoundaryFull(const std::string& boundary) const;

  void ApplyRetryStrategy(const std::string& name, int64_t now_ms);
  // The lock keys of `sync` with tags read in `scope`; Error message on failure.
  absl::StatusOr<std::vector<std::string>> LockKeysOf(const Synchronization& sync,
                                                      const TagScope& scope) const;
  // spec.synchronization: false while the run waits for its workflow-level locks.
  bool HoldWorkflowLocks(int64_t now_ms);
  // A new suspend node: when it resumes by itself (its duration read in `scope`), or an error.
  absl::StatusOr<int64_t> SuspendUntil(const Template& tmpl, const TagScope& scope,
                                       int64_t now_ms) const;
  // Checks that `node_name` is a suspended node.
  absl::Status CheckSuspended(const std::string& node_name) const;
  // Ends the suspended node Succeeded with its outputs (see Resume()).
  void FinishSuspended(const std::string& name, int64_t now_ms);
  // Keeps `node`'s outputs that have a globalName in global_outputs_.
  void RecordGlobalOutputs(const NodeState& node);
  // A node of a memoized template about to start: if its key has a fresh cache entry it ends
  // Succeeded with the stored outputs (true); a key or maxAge that does not resolve ends it in
  // Error (true); otherwise false and it runs.
  bool FinishFromCache(const std::string& name, int64_t now_ms);
  // A memoized node that succeeded: its outputs go into the cache.
  void SaveToCache(const NodeState& node, int64_t now_ms);
  std::vector<DispatchRequest> Dispatch(int64_t now_ms);

  std::shared_ptr<const Workflow> workflow_;
  std::map<std::string, std::string> parameters_;
  std::string run_name_;
  std::map<std::string, NodeState> nodes_;
  std::set<std::string> changed_;
  std::set<std::string> removed_;
  bool stopping_ = false;
  StopStrategy stop_strategy_ = StopStrategy::kNone;  // kNone while !stopping_
  RunLimits limits_;
  std::string stop_message_;  // kept in the root node's message too, so Restore() recovers it
  // The plan of every dag template, by template name; built from workflow_ by Create/Restore.
  std::map<std::string, std::shared_ptr<const internal::DagPlan>> plans_;
  // Whether any task or step of the workflow has a hook (Settled() is IsFinal() if not).
  bool has_task_hooks_ = false;
  // Whether any task, step or the workflow has a lifecycle hook (not only exit hooks).
  bool has_lifecycle_hooks_ = false;
  LockTable* locks_ = nullptr;
  MemoCache* memo_ = nullptr;
  bool waiting_for_locks_ = false;
  // The run holds its spec.synchronization locks (derived from its nodes after Restore()).
  bool workflow_locks_held_ = false;
  // {{workflow.outputs.parameters.X}} / {{workflow.outputs.artifacts.X}} ("parameters.X",
  // "artifacts.X" → value): outputs with a globalName, set when their node succeeds (the
  // latest wins), rebuilt from the nodes by Restore().
  std::map<std::string, std::string> global_outputs_;
};

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_RUN_STATE_H_
