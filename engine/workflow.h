// The typed model of a workflow: Argo's `Workflow` / `WorkflowTemplate` YAML plus dagd's
// `ansible` template type and `runner` field (../shared/DESIGN.md §1).
//
// Produced by ParseWorkflow() (engine/parser.h) and checked by CompileWorkflow()
// (engine/compiler.h). Plain values: no I/O, no threads; safe to copy and to share read-only
// between threads. Every element that a user wrote carries the SourceLocation of its YAML node so
// later errors (unknown template, cycle, bad expression) can name the file, line and field.
#ifndef DAGD_ENGINE_WORKFLOW_H_
#define DAGD_ENGINE_WORKFLOW_H_

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dagd::engine {

// Where something was written: "wf.yaml:12:5". line and column are 1-based; 0 means unknown.
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  // "file:line:column" (or "file" when the line is unknown).
  std::string ToString() const;
};

// valueFrom of an output parameter.
struct ValueFrom {
  std::string path;        // a file in the attempt's working directory
  std::string stats;       // dagd: a key the playbook sets with set_stats
  std::string expression;  // a dag/steps template's output: an Argo expression (engine/expr.h)
  std::optional<std::string> default_value;  // `default:` used when the source is missing
  std::string parameter;  // a dag/steps template's output: a tag such as {{tasks.A.outputs.…}}
  bool supplied = false;  // a suspend template's output: given when the node is resumed
};

// One parameter: in `arguments.parameters`, `inputs.parameters` or `outputs.parameters`.
struct Parameter {
  std::string name;
  std::optional<std::string> value;          // `value:` (numbers/bools are kept as their text)
  std::optional<std::string> default_value;  // `default:`
  std::optional<ValueFrom> value_from;       // outputs only
  std::vector<std::string> enum_values;      // `enum:`
  std::string description;
  // An output's `globalName`: its value is also {{workflow.outputs.parameters.<name>}}.
  std::string global_name;
  // Argo fields dagd accepts but does not act on yet (valueFrom's `configMapKeyRef`,
  // `jsonPath`, `jqFilter`, `event`), verbatim, at their path relative to the parameter. Null if
  // none.
  nlohmann::json unsupported;
  SourceLocation location;
};

// One artifact: in `arguments.artifacts`, `inputs.artifacts` or `outputs.artifacts`. dagd keeps
// artifacts in its own artifact store (a directory under its data directory), addressed by key.
struct Artifact {
  std::string name;
  std::string path;  // where the pod finds (inputs) or leaves (outputs) the file or directory
  // arguments: a tag naming an output artifact ("{{steps.X.outputs.artifacts.Y}}",
  // "{{workflow.outputs.artifacts.Z}}"); a dag or steps template's outputs: the same, read
  // when the node succeeds.
  std::string from;
  std::string from_expression;  // a dag or steps template's outputs: an expression naming one
  // A key-only artifact: `s3.key` (or the key of another repository), the artifact's place in
  // dagd's store. May hold tags.
  std::string key;
  std::optional<std::string> raw;  // `raw.data`: the content, given inline
  std::string sub_path;            // `subPath`: a path inside the artifact
  bool optional = false;
  bool archive_none = false;  // `archive: {none: {}}`: stored as it is, not as a tgz
  std::string global_name;    // also {{workflow.outputs.artifacts.<name>}}
  // Fields dagd does not act on (`mode`, `recurseMode`, `archiveLogs`, repository settings
  // other than the key), verbatim. Null if none. Repositories other than a key are refused by
  // validation.
  nlohmann::json unsupported;
  SourceLocation location;
};

struct Arguments {
  std::vector<Parameter> parameters;
  std::vector<Artifact> artifacts;
};

struct Inputs {
  std::vector<Parameter> parameters;
  std::vector<Artifact> artifacts;
};

struct Outputs {
  std::vector<Parameter> parameters;
  std::vector<Artifact> artifacts;
};

enum class RetryPolicy { kAlways, kOnFailure, kOnError, kOnTransientError };

struct Backoff {
  std::string duration;      // "5s", "1m", or plain seconds "5"; empty means no delay
  double factor = 1;         // multiplier per retry (Argo default 2 only if set; 1 = constant)
  std::string max_duration;  // cap on the total time spent retrying; empty means none
};

struct RetryStrategy {
  std::string limit;  // IntOrString; may hold a {{…}} tag resolved at run time. Empty: unlimited
  RetryPolicy policy = RetryPolicy::kOnFailure;  // Argo's default when unset
  std::optional<Backoff> backoff;
  // Argo expression over lastRetry.{exitCode,status,duration,message}; false: no more retries.
  std::string expression;
  SourceLocation location;
};

// `continueOn` of a task or step.
struct ContinueOn {
  bool failed = false;
  bool error = false;
};

// `templateRef` of a task, step or hook (or `spec.workflowTemplateRef`, with `template_name`
// empty): a template of a stored WorkflowTemplate (`cluster_scope`: a ClusterWorkflowTemplate).
// engine/template_refs.h resolves it before validation.
struct TemplateRef {
  std::string name;           // the WorkflowTemplate's metadata.name
  std::string template_name;  // `template:`, the template within it
  bool cluster_scope = false;
  std::string path;  // its field path, e.g. "spec.templates[0].dag.tasks[1].templateRef"
  SourceLocation location;
};

// A lifecycle hook: an entry of `hooks` of a task, step or the spec, or the older
// `onExit: <template>` (named "exit"). The hook named `exit` is the exit handler: it runs when its
// owner has ended, if its `expression` (optional) holds. Any other hook runs at most once, as soon
// as its `expression` (required) holds while its owner runs (engine/run_state.h).
struct LifecycleHook {
  std::string name;        // "exit", or the hook's key under `hooks`
  std::string expression;  // `expression:`; may hold tags, read before it is evaluated
  std::string template_name;
  std::optional<TemplateRef> template_ref;  // instead of template_name, until resolved
  Arguments arguments;
  SourceLocation location;
};

// `withSequence` of a task or step (Argo's Sequence): the numbers from `start` (default 0),
// either `count` of them or up to `end` (down, if end < start), each printed with `format`
// (printf, default "%d"). Every field may hold tags; they are read when the task starts.
struct Sequence {
  std::string count;
  std::string start;
  std::string end;
  std::string format;
};

struct Template;

// One element of `dag.tasks`, or one step of a `steps` group (a step is a task without
// `dependencies` / `depends`).
struct DagTask {
  std::string name;
  std::string template_name;                // `template:`
  std::optional<TemplateRef> template_ref;  // `templateRef:`, until resolved (template_refs.h)
  std::vector<std::string> dependencies;    // `dependencies:` (legacy form)
  std::string depends;                      // `depends:` expression, empty if unset
  Arguments arguments;
  std::vector<nlohmann::json> with_items;  // `withItems:` values (strings, numbers, maps)
  std::string with_param;                  // `withParam:` (a JSON list after substitution)
  std::optional<Sequence> with_sequence;   // `withSequence:`
  std::string when;                        // `when:` (evaluated in a later issue)
  ContinueOn continue_on;
  std::optional<LifecycleHook> exit_hook;  // `hooks.exit` or `onExit`
  std::vector<LifecycleHook> hooks;        // the other `hooks`, in the file's order
  // `inline:` as parsed. ParseWorkflow() moves it into Workflow::templates under the name
  // "<calling template>.<task>" and sets `template_name` to that, so this is null afterwards.
  std::shared_ptr<Template> inline_template;
  SourceLocation location;
};

struct DagTemplate {
  std::vector<DagTask> tasks;
  std::string target;  // space-separated task names; empty means all leaf tasks
  std::optional<bool> fail_fast;
};

// A `steps` template: groups run one after the other, the steps of a group in parallel.
struct StepsTemplate {
  std::vector<std::vector<DagTask>> groups;
};

// An environment variable of a container.
struct EnvVar {
  std::string name;
  std::string value;
};

// `container:` — and the container part of `script:`.
struct ContainerSpec {
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<EnvVar> env;
  std::string working_dir;
  nlohmann::json kubernetes;  // every Kubernetes-only field, verbatim, for the cluster runners
};

struct ScriptSpec {
  ContainerSpec container;
  std::string source;
};

// `synchronization` of the workflow or a template (Argo's mutexes and semaphores): locks that
// every run of this dagd shares, held while the template's attempt (or the whole run) runs.
// Lock names may hold tags, read when the node starts.
struct Synchronization {
  std::vector<std::string> mutexes;  // `mutex.name`, `mutexes[].name`
  // `semaphore(s)`: "CONFIGMAP/KEY" of a `configMapKeyRef`, "database/KEY" of `database.key`
  // (dagd's own lock table is its database; `database` on a mutex changes nothing).
  std::vector<std::string> semaphores;
  // Fields dagd does not act on (`namespace`), verbatim; validation refuses them.
  nlohmann::json unsupported;
};

// `memoize:` (Argo's memoization): a node of the template whose `key` (tags substituted) has an
// entry in the cache younger than `max_age` succeeds at once with the outputs stored there;
// otherwise it runs, and its outputs are stored when it succeeds.
struct Memoize {
  std::string key;
  std::string max_age;  // Argo duration ("10s", "1h"); empty: entries never expire
  std::string cache;    // `cache.configMap.name`
  SourceLocation location;
};

// `suspend:`: the node waits until it is resumed (ResumeRun, `dagctl resume`), or until
// `duration` has passed (Argo's duration: "20" seconds, "2m", "6h"; may hold tags).
struct SuspendSpec {
  std::string duration;  // empty: until resumed
};

// dagd's `ansible:` template type.
struct AnsibleSpec {
  std::string playbook;   // a path inside the workflow's bundle directory
  std::string source;     // or the playbook inline
  std::string inventory;  // "localhost," or a path in the bundle, or inline text
  std::map<std::string, nlohmann::json> extra_vars;
  std::string limit;
  std::vector<EnvVar> env;
  // The rest of ansible-playbook's command line.
  bool check = false;                  // --check
  bool diff = false;                   // --diff
  std::vector<std::string> tags;       // --tags; an entry may itself be a comma list
  std::vector<std::string> skip_tags;  // --skip-tags; likewise
  std::optional<int64_t> forks;        // --forks N, N >= 1
  int verbosity = 0;                   // 0-4: none, -v … -vvvv
  bool become = false;                 // --become
  std::string become_user;             // --become-user
  bool host_key_checking = false;      // ANSIBLE_HOST_KEY_CHECKING
  // Credentials, by name: files in dagd's credentials directory, resolved at launch and never
  // part of the workflow (runners/local/credentials.h). Empty: not used.
  std::string vault_password_ref;          // vaultPasswordRef → --vault-password-file
  std::string private_key_ref;             // privateKeyRef → --private-key
  std::string become_password_ref;         // becomePasswordRef → --become-password-file
  std::vector<std::string> env_from_refs;  // envFromRef: NAME=VALUE files, into the environment
};

// Whether `name` may name a credential: [A-Za-z0-9][A-Za-z0-9._-]* — a file name in dagd's
// credentials directory, never a path (no '/', no leading '.').
bool IsCredentialName(std::string_view name);
// The rule above in words, for error messages.
inline constexpr char kCredentialNameRule[] =
    "a credential name is letters, digits, '.', '_' and '-', starting with a letter or digit "
    "(the name of a file in dagd's credentials directory, not a path)";

// kUnsupported: an Argo template type dagd accepts but cannot run yet (resource, http, plugin,
// containerSet, data); its body is kept in Template::kubernetes under its Argo key.
enum class TemplateType { kDag, kSteps, kContainer, kScript, kAnsible, kSuspend, kUnsupported };

struct Template {
  std::string name;
  TemplateType type = TemplateType::kContainer;
  Inputs inputs;
  Outputs outputs;
  std::optional<RetryStrategy> retry_strategy;
  std::string runner;   // dagd: per-template runner override; empty: the workflow's
  std::string timeout;  // Argo duration string, empty if unset
  std::optional<int64_t> active_deadline_seconds;
  std::optional<int64_t> parallelism;

  // Exactly one of these is set, per `type`.
  std::optional<DagTemplate> dag;
  std::optional<StepsTemplate> steps;
  std::optional<ContainerSpec> container;
  std::optional<ScriptSpec> script;
  std::optional<AnsibleSpec> ansible;
  std::optional<SuspendSpec> suspend;
  std::optional<Synchronization> synchronization;
  std::optional<Memoize> memoize;

  nlohmann::json kubernetes;  // template-level Kubernetes-only fields, verbatim
  SourceLocation location;
};

// kConfigMap: a Kubernetes ConfigMap (apiVersion v1), stored beside the workflows for the
// semaphores whose sizes it holds (`synchronization` configMapKeyRef); it has no spec.
enum class WorkflowKind { kWorkflow, kWorkflowTemplate, kClusterWorkflowTemplate, kConfigMap };

// "Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "ConfigMap".
const char* WorkflowKindName(WorkflowKind kind);

struct Workflow {
  WorkflowKind kind = WorkflowKind::kWorkflow;
  std::string name;            // metadata.name
  std::string generate_name;   // metadata.generateName
  std::string namespace_name;  // metadata.namespace
  std::map<std::string, std::string> labels;
  std::string entrypoint;
  Arguments arguments;
  std::vector<Template> templates;
  std::string runner;  // dagd: default runner for every template; empty: dagd's default
  std::optional<int64_t> parallelism;
  std::optional<int64_t> active_deadline_seconds;
  std::optional<LifecycleHook> exit_hook;  // spec.onExit or spec.hooks.exit
  std::vector<LifecycleHook> hooks;        // the other spec.hooks, in the file's order
  // spec.workflowTemplateRef: the spec is that WorkflowTemplate's, with this one's fields over
  // it; resolved (and cleared) by engine/template_refs.h.
  std::optional<TemplateRef> workflow_template_ref;
  std::optional<Synchronization> synchronization;  // spec.synchronization: held by the whole run
  nlohmann::json kubernetes;                       // spec-level Kubernetes-only fields, verbatim
  std::map<std::string, std::string> config_data;  // a ConfigMap's `data`
  std::string file;                                // the file name errors refer to
  // Where each field was written, keyed by its field path as errors spell it
  // ("spec.entrypoint", "spec.templates[1].dag.tasks[0].depends"; a list element's path is
  // that of its first line). Lets checks after parsing name the exact line.
  std::map<std::string, SourceLocation> field_locations;

  // The template called `name`, or nullptr.
  const Template* FindTemplate(const std::string& name) const;
  // What runs of an inline spec are named after (runs list --workflow, the metrics' label, the
  // run page): metadata.name, else generateName without its trailing '-'; "" if neither.
  std::string DisplayName() const;
};

// Argo's node phases.
enum class NodePhase { kPending, kRunning, kSucceeded, kFailed, kError, kSkipped, kOmitted };

// "Pending", "Running", … exactly as Argo spells them.
const char* NodePhaseName(NodePhase phase);
// Parses Argo's spelling; false if unknown.
bool ParseNodePhase(const std::string& text, NodePhase* phase);
// Succeeded, Failed, Error, Skipped and Omitted are final.
bool IsFinal(NodePhase phase);

const char* TemplateTypeName(TemplateType type);
const char* RetryPolicyName(RetryPolicy policy);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_WORKFLOW_H_
