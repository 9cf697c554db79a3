#include "engine/validate.h"

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/topological_sort.hpp>
#include <iterator>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "engine/depends.h"
#include "engine/duration.h"
#include "engine/expr.h"
#include "engine/internal/diagnostics.h"
#include "engine/status_macros.h"
#include "engine/tags.h"

namespace dagd::engine {
namespace {

// Edges point from a task to each task it depends on.
using TaskGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
using TaskVertex = TaskGraph::vertex_descriptor;

// A task name that a task waits for, with the field (relative to the task) that names it.
struct DependencyRef {
  std::string name;
  std::string field;  // "dependencies[1]" or "depends"
};

// Every dependency `task` names, from `dependencies` and `depends`. Error: depends does not parse.
absl::StatusOr<std::vector<DependencyRef>> NamedDependencies(const DagTask& task) {
  std::vector<DependencyRef> refs;
  for (size_t k = 0; k < task.dependencies.size(); ++k) {
    refs.push_back({task.dependencies[k], absl::StrCat("dependencies[", k, "]")});
  }
  if (!task.depends.empty()) {
    ASSIGN_OR_RETURN(const DependsExpression expression, DependsExpression::Parse(task.depends));
    for (const std::string& name : expression.tasks()) refs.push_back({name, "depends"});
  }
  return refs;
}

std::map<std::string, size_t> TaskIndex(const DagTemplate& dag) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < dag.tasks.size(); ++i) index.emplace(dag.tasks[i].name, i);
  return index;
}

// The dependency graph of `dag`, skipping names that are not tasks and depends that do not parse
// (validation reports those before it builds the graph).
TaskGraph BuildTaskGraph(const DagTemplate& dag) {
  const std::map<std::string, size_t> index = TaskIndex(dag);
  TaskGraph graph(dag.tasks.size());
  for (size_t i = 0; i < dag.tasks.size(); ++i) {
    absl::StatusOr<std::vector<DependencyRef>> refs = NamedDependencies(dag.tasks[i]);
    if (!refs.ok()) continue;
    for (const DependencyRef& ref : *refs) {
      auto it = index.find(ref.name);
      if (it != index.end()) boost::add_edge(i, it->second, graph);
    }
  }
  return graph;
}

// Records the first cycle a depth-first search meets: the path from the target of the first
// back edge down to its source, closed with the target again. Boost copies visitors, so the
// state lives outside.
class CycleRecorder : public boost::default_dfs_visitor {
 public:
  CycleRecorder(std::vector<TaskVertex>* path, std::vector<TaskVertex>* cycle)
      : path_(path), cycle_(cycle) {}

  void discover_vertex(TaskVertex v, const TaskGraph&) { path_->push_back(v); }
  void finish_vertex(TaskVertex, const TaskGraph&) { path_->pop_back(); }
  void back_edge(TaskGraph::edge_descriptor e, const TaskGraph& graph) {
    if (!cycle_->empty()) return;
    const TaskVertex target = boost::target(e, graph);
    auto start = std::find(path_->begin(), path_->end(), target);
    cycle_->assign(start, path_->end());
    cycle_->push_back(target);
  }

 private:
  std::vector<TaskVertex>* path_;
  std::vector<TaskVertex>* cycle_;
};

// A piece of text a user wrote, and the field path it was written at.
struct Text {
  std::string path;
  std::string value;
};

// Every string inside `json`, with paths continuing `path`. `inline` templates are skipped:
// their tags refer to their own inputs, not the enclosing template's.
void CollectJsonStrings(const nlohmann::json& json, const std::string& path,
                        std::vector<Text>* out) {
  if (json.is_string()) {
    out->push_back({path, json.get<std::string>()});
  } else if (json.is_array()) {
    for (size_t i = 0; i < json.size(); ++i) {
      CollectJsonStrings(json[i], absl::StrCat(path, "[", i, "]"), out);
    }
  } else if (json.is_object()) {
    for (const auto& [key, value] : json.items()) {
      if (key != "inline") CollectJsonStrings(value, absl::StrCat(path, ".", key), out);
    }
  }
}

void CollectContainerStrings(const ContainerSpec& container, const std::string& path,
                             std::vector<Text>* out) {
  out->push_back({path + ".image", container.image});
  for (size_t i = 0; i < container.command.size(); ++i) {
    out->push_back({absl::StrCat(path, ".command[", i, "]"), container.command[i]});
  }
  for (size_t i = 0; i < container.args.size(); ++i) {
    out->push_back({absl::StrCat(path, ".args[", i, "]"), container.args[i]});
  }
  // No index: env entries read from Secrets are not in the model, so indices may differ.
  for (const EnvVar& var : container.env) out->push_back({path + ".env", var.value});
  out->push_back({path + ".workingDir", container.working_dir});
  CollectJsonStrings(container.kubernetes, path, out);
}

// Every string of `tmpl` in which `{{inputs.parameters.…}}` refers to the template's own inputs.
std::vector<Text> TemplateStrings(const Template& tmpl, const std::string& path) {
  std::vector<Text> out;
  if (tmpl.container) CollectContainerStrings(*tmpl.container, path + ".container", &out);
  if (tmpl.script) {
    CollectContainerStrings(tmpl.script->container, path + ".script", &out);
    out.push_back({path + ".script.source", tmpl.script->source});
  }
  if (tmpl.ansible) {
    const std::string base = path + ".ansible";
    const AnsibleSpec& ansible = *tmpl.ansible;
    out.push_back({base + ".playbook", ansible.playbook});
    out.push_back({base + ".source", ansible.source});
    out.push_back({base + ".inventory", ansible.inventory});
    out.push_back({base + ".limit", ansible.limit});
    for (size_t i = 0; i < ansible.tags.size(); ++i) {
      out.push_back({absl::StrCat(base, ".tags[", i, "]"), ansible.tags[i]});
    }
    for (size_t i = 0; i < ansible.skip_tags.size(); ++i) {
      out.push_back({absl::StrCat(base, ".skipTags[", i, "]"), ansible.skip_tags[i]});
    }
    out.push_back({base + ".becomeUser", ansible.become_user});
    out.push_back({base + ".vaultPasswordRef", ansible.vault_password_ref});
    out.push_back({base + ".privateKeyRef", ansible.private_key_ref});
    out.push_back({base + ".becomePasswordRef", ansible.become_password_ref});
    for (size_t i = 0; i < ansible.env_from_refs.size(); ++i) {
      out.push_back({absl::StrCat(base, ".envFromRef[", i, "]"), ansible.env_from_refs[i]});
    }
    for (const auto& [name, value] : ansible.extra_vars) {
      CollectJsonStrings(value, absl::StrCat(base, ".extraVars.", name), &out);
    }
    for (size_t i = 0; i < ansible.env.size(); ++i) {
      out.push_back({absl::StrCat(base, ".env[", i, "].value"), ansible.env[i].value});
    }
  }
  auto collect_task = [&](const DagTask& task, const std::string& task_path) {
    const std::vector<Parameter>& args = task.arguments.parameters;
    for (size_t k = 0; k < args.size(); ++k) {
      out.push_back({absl::StrCat(task_path, ".arguments.parameters[", k, "].value"),
                     args[k].value.value_or("")});
    }
    const std::vector<Artifact>& artifacts = task.arguments.artifacts;
    for (size_t k = 0; k < artifacts.size(); ++k) {
      const std::string artifact_path = absl::StrCat(task_path, ".arguments.artifacts[", k, "]");
      out.push_back({artifact_path + ".from", artifacts[k].from});
      out.push_back({artifact_path + ".s3.key", artifacts[k].key});
    }
    out.push_back({task_path + ".when", task.when});
    out.push_back({task_path + ".withParam", task.with_param});
    for (size_t k = 0; k < task.with_items.size(); ++k) {
      CollectJsonStrings(task.with_items[k], absl::StrCat(task_path, ".withItems[", k, "]"), &out);
    }
    if (task.with_sequence) {
      const Sequence& sequence = *task.with_sequence;
      out.push_back({task_path + ".withSequence.count", sequence.count});
      out.push_back({task_path + ".withSequence.start", sequence.start});
      out.push_back({task_path + ".withSequence.end", sequence.end});
      out.push_back({task_path + ".withSequence.format", sequence.format});
    }
    auto collect_hook = [&](const LifecycleHook& hook) {
      const std::string hook_path = absl::StrCat(task_path, ".hooks.", hook.name);
      out.push_back({hook_path + ".expression", hook.expression});
      const std::vector<Parameter>& hook_args = hook.arguments.parameters;
      for (size_t k = 0; k < hook_args.size(); ++k) {
        out.push_back({absl::StrCat(hook_path, ".arguments.parameters[", k, "].value"),
                       hook_args[k].value.value_or("")});
      }
    };
    if (task.exit_hook) collect_hook(*task.exit_hook);
    for (const LifecycleHook& hook : task.hooks) collect_hook(hook);
  };
  if (tmpl.dag) {
    for (size_t j = 0; j < tmpl.dag->tasks.size(); ++j) {
      collect_task(tmpl.dag->tasks[j], absl::StrCat(path, ".dag.tasks[", j, "]"));
    }
  }
  if (tmpl.steps) {
    for (size_t g = 0; g < tmpl.steps->groups.size(); ++g) {
      for (size_t j = 0; j < tmpl.steps->groups[g].size(); ++j) {
        collect_task(tmpl.steps->groups[g][j], absl::StrCat(path, ".steps[", g, "][", j, "]"));
      }
    }
  }
  const std::vector<Parameter>& outputs = tmpl.outputs.parameters;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const std::string param_path = absl::StrCat(path, ".outputs.parameters[", k, "]");
    out.push_back({param_path + ".value", outputs[k].value.value_or("")});
    if (outputs[k].value_from) {
      out.push_back({param_path + ".valueFrom.path", outputs[k].value_from->path});
    }
  }
  if (tmpl.retry_strategy) {
    out.push_back({path + ".retryStrategy.limit", tmpl.retry_strategy->limit});
  }
  out.push_back({path + ".timeout", tmpl.timeout});
  if (tmpl.memoize) out.push_back({path + ".memoize.key", tmpl.memoize->key});
  CollectJsonStrings(tmpl.kubernetes, path, &out);
  return out;
}

bool IsRequiredInput(const Parameter& input) {
  return !input.value && !input.default_value && !input.value_from &&
         !(input.unsupported.is_object() && input.unsupported.contains("valueFrom"));
}

std::vector<std::string> ParameterNames(const std::vector<Parameter>& parameters) {
  std::vector<std::string> names;
  for (const Parameter& p : parameters) names.push_back(p.name);
  return names;
}

constexpr char kSynchronizationNotYet[] =
    "locks of other namespaces (synchronization `namespace`) are not supported by dagd yet";
constexpr char kSynchronizationFix[] =
    "remove `namespace`: dagd's mutexes and semaphores are shared by every run of this dagd";

class Validator {
 public:
  explicit Validator(const Workflow& workflow) : wf_(workflow) {
    for (const Template& t : wf_.templates) template_names_.push_back(t.name);
  }

  // Every problem found, in the order of the file: each check goes on to the next template,
  // task and step after one fails (a check stops at its first problem within one task).
  std::vector<absl::Status> Run() {
    Collect(CheckTemplateNames());
    Collect(CheckEntrypoint());
    if (wf_.exit_hook) {
      const std::string path =
          wf_.field_locations.count("spec.onExit") > 0 ? "spec.onExit" : "spec.hooks.exit";
      Collect(CheckHook(*wf_.exit_hook, "", path));
    }
    for (const LifecycleHook& hook : wf_.hooks) {
      Collect(CheckHook(hook, "", "spec.hooks." + hook.name));
    }
    // A lock silently not taken is worse than a refusal.
    if (wf_.synchronization && wf_.synchronization->unsupported.is_object()) {
      Collect(Fail("spec.synchronization", kSynchronizationNotYet, kSynchronizationFix));
    }
    for (size_t k = 0; k < wf_.arguments.artifacts.size(); ++k) {
      Collect(CheckArtifact(wf_.arguments.artifacts[k], nullptr, "arguments",
                            absl::StrCat("spec.arguments.artifacts[", k, "]")));
    }
    // Features dagd refuses come first: a submission is refused with the first problem, and
    // "not supported yet" explains more than what follows from it.
    for (size_t i = 0; i < wf_.templates.size(); ++i) {
      const Template& tmpl = wf_.templates[i];
      if (tmpl.synchronization && tmpl.synchronization->unsupported.is_object()) {
        Collect(Fail(absl::StrCat("spec.templates[", i, "].synchronization"),
                     kSynchronizationNotYet, kSynchronizationFix));
      }
      if (tmpl.type == TemplateType::kUnsupported) {
        Collect(RefuseUnrunnable(tmpl, absl::StrCat("spec.templates[", i, "]")));
      }
    }
    for (size_t i = 0; i < wf_.templates.size(); ++i) {
      const Template& tmpl = wf_.templates[i];
      const std::string path = absl::StrCat("spec.templates[", i, "]");
      Collect(CheckInputs(tmpl, path));
      Collect(CheckOutputSources(tmpl, path));
      Collect(CheckArtifacts(tmpl, path));
      if (tmpl.memoize && !tmpl.memoize->max_age.empty() &&
          !absl::StrContains(tmpl.memoize->max_age, "{{")) {
        if (absl::StatusOr<int64_t> age = ParseDurationMs(tmpl.memoize->max_age); !age.ok()) {
          Collect(Fail(path + ".memoize.maxAge",
                       absl::StrCat("'", tmpl.memoize->max_age, "' is not a duration"),
                       "write it as Argo does: \"10s\", \"5m\", \"1h\" or seconds"));
        }
      }
      if (tmpl.ansible) Collect(CheckCredentialRefs(*tmpl.ansible, path + ".ansible"));
      if (tmpl.dag) Collect(CheckDag(tmpl, path + ".dag"));
      if (tmpl.steps) Collect(CheckSteps(tmpl, path + ".steps"));
    }
    return std::move(problems_);
  }

 private:
  // Where `path` was written, or failing that the nearest enclosing field that was.
  SourceLocation Where(std::string path) const {
    while (true) {
      auto it = wf_.field_locations.find(path);
      if (it != wf_.field_locations.end()) return it->second;
      const size_t cut = path.find_last_of(".[");
      if (cut == std::string::npos || cut == 0) return SourceLocation{wf_.file};
      path.resize(cut);
    }
  }

  absl::Status Fail(const std::string& path, absl::string_view what, absl::string_view fix) const {
    return internal::WorkflowError(Where(path), path, what, fix);
  }

  absl::Status CheckTemplateNames() const {
    std::map<std::string, size_t> first;
    for (size_t i = 0; i < wf_.templates.size(); ++i) {
      auto [it, inserted] = first.emplace(wf_.templates[i].name, i);
      if (!inserted) {
        return Fail(absl::StrCat("spec.templates[", i, "].name"),
                    absl::StrCat("duplicate template name '", wf_.templates[i].name, "'"),
                    absl::StrCat("template names must be unique; the first is at line ",
                                 Where(absl::StrCat("spec.templates[", it->second, "]")).line));
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckEntrypoint() const {
    if (wf_.workflow_template_ref) return Unresolved(*wf_.workflow_template_ref);
    if (wf_.entrypoint.empty()) {
      // A WorkflowTemplate may be a library of templates that other workflows call.
      if (wf_.kind != WorkflowKind::kWorkflow) return absl::OkStatus();
      return Fail("spec.entrypoint", "missing",
                  template_names_.empty()
                      ? std::string("add templates and name the first one in `entrypoint:`")
                      : absl::StrCat("name the template the run starts with, one of: ",
                                     absl::StrJoin(template_names_, ", ")));
    }
    const Template* entry = wf_.FindTemplate(wf_.entrypoint);
    if (entry == nullptr) {
      return Fail("spec.entrypoint", absl::StrCat("unknown template '", wf_.entrypoint, "'"),
                  internal::SuggestFix(wf_.entrypoint, template_names_, "templates"));
    }
    // Argo binds the workflow's arguments to the entrypoint's inputs by name. A WorkflowTemplate
    // gets its arguments where it is used (a Workflow's workflowTemplateRef).
    if (wf_.kind != WorkflowKind::kWorkflow) return absl::OkStatus();
    for (const Parameter& input : entry->inputs.parameters) {
      if (!IsRequiredInput(input)) continue;
      bool declared = false;
      for (const Parameter& argument : wf_.arguments.parameters) {
        declared = declared || argument.name == input.name;
      }
      if (!declared) {
        return Fail("spec.entrypoint",
                    absl::StrCat("entrypoint template '", entry->name, "' needs input parameter '",
                                 input.name, "'"),
                    absl::StrCat("declare it in spec.arguments.parameters: {name: ", input.name,
                                 ", value: …}"));
      }
    }
    return absl::OkStatus();
  }

  // Input names are unique and every `{{inputs.parameters.p}}` of the template names one.
  absl::Status CheckInputs(const Template& tmpl, const std::string& path) const {
    const std::vector<std::string> inputs = ParameterNames(tmpl.inputs.parameters);
    const std::set<std::string> declared(inputs.begin(), inputs.end());
    if (declared.size() != inputs.size()) {
      for (size_t k = 1; k < inputs.size(); ++k) {
        if (std::count(inputs.begin(), inputs.begin() + k, inputs[k]) > 0) {
          return Fail(absl::StrCat(path, ".inputs.parameters[", k, "].name"),
                      absl::StrCat("duplicate input parameter '", inputs[k], "'"),
                      "declare each input once");
        }
      }
    }
    constexpr absl::string_view kPrefix = "inputs.parameters.";
    for (const Text& text : TemplateStrings(tmpl, path)) {
      for (const std::string& tag : FindDagdTags(text.value)) {
        if (!absl::StartsWith(tag, kPrefix)) continue;
        const std::string name = tag.substr(kPrefix.size());
        if (declared.count(name) > 0) continue;
        const std::string match = internal::ClosestMatch(name, inputs);
        return Fail(text.path,
                    absl::StrCat("{{", tag, "}} names an input parameter that template '",
                                 tmpl.name, "' does not declare"),
                    match.empty()
                        ? absl::StrCat("declare it under inputs.parameters: {name: ", name, "}")
                        : absl::StrCat("did you mean '", match, "'?"));
      }
    }
    return absl::OkStatus();
  }

  // valueFrom.stats reads what a playbook set with set_stats: only ansible templates have that.
  absl::Status CheckOutputSources(const Template& tmpl, const std::string& path) const {
    const std::vector<Parameter>& outputs = tmpl.outputs.parameters;
    for (size_t k = 0; k < outputs.size(); ++k) {
      if (outputs[k].value_from && outputs[k].value_from->supplied &&
          tmpl.type != TemplateType::kSuspend) {
        return Fail(absl::StrCat(path, ".outputs.parameters[", k, "].valueFrom.supplied"),
                    absl::StrCat("valueFrom.supplied is given when a suspended node is resumed, "
                                 "but template '",
                                 tmpl.name, "' is a ", TemplateTypeName(tmpl.type), " template"),
                    "make it a suspend template, or read the value with valueFrom.path");
      }
      if (!outputs[k].value_from || outputs[k].value_from->stats.empty()) continue;
      if (tmpl.type == TemplateType::kAnsible) continue;
      return Fail(absl::StrCat(path, ".outputs.parameters[", k, "].valueFrom.stats"),
                  absl::StrCat("valueFrom.stats reads set_stats data, but template '", tmpl.name,
                               "' is a ", TemplateTypeName(tmpl.type), " template"),
                  "use valueFrom.path for a file the command writes, or make it an ansible "
                  "template");
    }
    return absl::OkStatus();
  }

  // Each credential an ansible template names is a plain file name. A name with a dagd tag is
  // only known at launch, where the runner checks it (runners/local/credentials.h).
  absl::Status CheckCredentialRefs(const AnsibleSpec& ansible, const std::string& path) const {
    std::vector<Text> refs;  // an empty *Ref field is not set; an empty envFromRef entry is bad
    if (!ansible.vault_password_ref.empty()) {
      refs.push_back({path + ".vaultPasswordRef", ansible.vault_password_ref});
    }
    if (!ansible.private_key_ref.empty()) {
      refs.push_back({path + ".privateKeyRef", ansible.private_key_ref});
    }
    if (!ansible.become_password_ref.empty()) {
      refs.push_back({path + ".becomePasswordRef", ansible.become_password_ref});
    }
    for (size_t i = 0; i < ansible.env_from_refs.size(); ++i) {
      // `envFromRef: name` is kept as a list of one; its path has no index then.
      std::string element = absl::StrCat(path, ".envFromRef[", i, "]");
      if (wf_.field_locations.count(element) == 0) element = path + ".envFromRef";
      refs.push_back({element, ansible.env_from_refs[i]});
    }
    for (const Text& ref : refs) {
      if (absl::StrContains(ref.value, "{{") || IsCredentialName(ref.value)) continue;
      return Fail(ref.path, absl::StrCat("'", ref.value, "' is not a credential name"),
                  kCredentialNameRule);
    }
    return absl::OkStatus();
  }

  // A template of a type dagd does not run (its body is kept in Template::kubernetes under its
  // Argo key): refused at submit, rather than failing the run when a node reaches it.
  absl::Status RefuseUnrunnable(const Template& tmpl, const std::string& path) const {
    std::string kind = "unknown";
    for (const char* key : {"resource", "http", "plugin", "containerSet", "data"}) {
      if (tmpl.kubernetes.is_object() && tmpl.kubernetes.contains(key)) kind = key;
    }
    return Fail(absl::StrCat(path, ".", kind),
                absl::StrCat("template '", tmpl.name, "' is a `", kind,
                             "` template, which dagd does not run yet"),
                "do its work in a container, script or ansible template");
  }

  // Settings of an artifact that change nothing for dagd's store.
  static bool IgnoredArtifactField(const std::string& field) {
    return field == "mode" || field == "recurseMode" || field == "archiveLogs" ||
           field == "artifactGC" || field == "deleted";
  }

  // Whether `artifact` names a repository other than dagd's store (refused by CheckArtifact).
  static bool NamesOtherRepository(const Artifact& artifact) {
    if (!artifact.unsupported.is_object()) return false;
    for (const auto& [field, value] : artifact.unsupported.items()) {
      if (!IgnoredArtifactField(field) && field != "archive") return true;
    }
    return false;
  }

  // One artifact: only dagd's own store, and what it needs where it is used (`role`: "inputs",
  // "outputs" or "arguments").
  absl::Status CheckArtifact(const Artifact& artifact, const Template* tmpl,
                             const std::string& role, const std::string& path) const {
    if (artifact.unsupported.is_object()) {
      for (const auto& [field, value] : artifact.unsupported.items()) {
        if (IgnoredArtifactField(field)) continue;
        if (field == "archive") {
          return Fail(path + ".archive", "zip archives are not supported by dagd",
                      "use the default (tar) or `archive: {none: {}}`");
        }
        return Fail(absl::StrCat(path, ".", field),
                    absl::StrCat("artifact '", artifact.name, "': ", field,
                                 " repositories are not supported by dagd, which keeps artifacts "
                                 "in its own store"),
                    "pass the artifact with `from:`, or give only a key (s3: {key: …}) to name "
                    "its place in dagd's store");
      }
    }
    if (role == "arguments") {
      if (artifact.from.empty() && artifact.key.empty() && !artifact.raw) {
        return Fail(path, absl::StrCat("argument artifact '", artifact.name, "' has no source"),
                    "give `from: \"{{steps.X.outputs.artifacts.Y}}\"` or a key (s3: {key: …})");
      }
      return absl::OkStatus();
    }
    const bool composite = tmpl->type == TemplateType::kDag || tmpl->type == TemplateType::kSteps;
    if (role == "inputs" && composite) {
      // Passed on to its tasks by key as {{inputs.artifacts.NAME}}; nothing is placed at a path.
      if (artifact.raw || !artifact.sub_path.empty()) {
        return Fail(path,
                    absl::StrCat("input artifact '", artifact.name, "' of ",
                                 TemplateTypeName(tmpl->type), " template '", tmpl->name,
                                 "': raw data and subPath are read only by container and script "
                                 "templates"),
                    "pass the artifact on to a container or script template and read it there");
      }
      return absl::OkStatus();
    }
    if (role == "outputs" && composite) {
      if (artifact.from.empty() && artifact.from_expression.empty()) {
        return Fail(
            path,
            absl::StrCat("output artifact '", artifact.name, "' of ", TemplateTypeName(tmpl->type),
                         " template '", tmpl->name, "' has no source"),
            "give `from: \"{{tasks.X.outputs.artifacts.Y}}\"` or `fromExpression`");
      }
      return absl::OkStatus();
    }
    if (tmpl->type != TemplateType::kContainer && tmpl->type != TemplateType::kScript) {
      return Fail(path,
                  absl::StrCat("artifacts on ", TemplateTypeName(tmpl->type),
                               " templates are not supported by dagd yet"),
                  "pass the data as parameters, or move the files in a container or script "
                  "template");
    }
    if (artifact.path.empty()) {
      return Fail(path,
                  absl::StrCat(role == "inputs" ? "input" : "output", " artifact '", artifact.name,
                               "' has no path"),
                  role == "inputs" ? "give the path the container reads it from"
                                   : "give the path the container writes it to");
    }
    return absl::OkStatus();
  }

  absl::Status CheckArtifacts(const Template& tmpl, const std::string& path) const {
    for (size_t k = 0; k < tmpl.inputs.artifacts.size(); ++k) {
      RETURN_IF_ERROR(CheckArtifact(tmpl.inputs.artifacts[k], &tmpl, "inputs",
                                    absl::StrCat(path, ".inputs.artifacts[", k, "]")));
    }
    for (size_t k = 0; k < tmpl.outputs.artifacts.size(); ++k) {
      RETURN_IF_ERROR(CheckArtifact(tmpl.outputs.artifacts[k], &tmpl, "outputs",
                                    absl::StrCat(path, ".outputs.artifacts[", k, "]")));
    }
    return absl::OkStatus();
  }

  // A templateRef is resolved (engine/template_refs.h) before validation, from the
  // WorkflowTemplates dagd stores; one left means the workflow was checked without them.
  absl::Status Unresolved(const TemplateRef& ref) const {
    return Fail(ref.path,
                absl::StrCat("refers to ",
                             ref.cluster_scope ? "ClusterWorkflowTemplate '" : "WorkflowTemplate '",
                             ref.name, "', which is only known to a dagd that stores it"),
                "apply the template to dagd (dagctl apply -f FILE) and check this workflow there "
                "(dagctl lint or submit)");
  }

  // A hook calls a known template with the arguments it needs, and its expression parses.
  // `owner` is "" for the workflow's hooks, "<task>." for a task's.
  absl::Status CheckHook(const LifecycleHook& hook, const std::string& owner,
                         const std::string& path) const {
    if (!hook.expression.empty() && !absl::StrContains(hook.expression, "{{")) {
      if (absl::Status syntax = CheckExpressionSyntax(hook.expression); !syntax.ok()) {
        return Fail(path + ".expression", std::string(syntax.message()),
                    "write an expression of Argo's expression language, e.g. "
                    "`steps['step-1'].status == \"Failed\"`");
      }
    }
    if (hook.template_ref) return Unresolved(*hook.template_ref);
    DagTask call;
    call.name = absl::StrCat(owner, hook.name == "exit" ? "onExit" : "hooks." + hook.name);
    call.template_name = hook.template_name;
    call.arguments = hook.arguments;
    return CheckTaskCall(call, path);
  }

  // A task's `template` exists and the arguments it passes match the template's inputs.
  absl::Status CheckTaskCall(const DagTask& task, const std::string& task_path) const {
    if (task.exit_hook) {
      const std::string hook_path = wf_.field_locations.count(task_path + ".onExit") > 0
                                        ? task_path + ".onExit"
                                        : task_path + ".hooks.exit";
      RETURN_IF_ERROR(CheckHook(*task.exit_hook, task.name + ".", hook_path));
    }
    for (const LifecycleHook& hook : task.hooks) {
      RETURN_IF_ERROR(
          CheckHook(hook, task.name + ".", absl::StrCat(task_path, ".hooks.", hook.name)));
    }
    if (task.template_ref) return Unresolved(*task.template_ref);
    const int loops = (task.with_items.empty() ? 0 : 1) + (task.with_param.empty() ? 0 : 1) +
                      (task.with_sequence ? 1 : 0);
    if (loops > 1) {
      return Fail(task_path, absl::StrCat("'", task.name, "' has more than one loop"),
                  "keep one of withItems, withParam and withSequence");
    }
    if (task.template_name.empty()) {
      return Fail(task_path, absl::StrCat("task '", task.name, "' names no template"),
                  "add `template: <name of a template>`");
    }
    const Template* callee = wf_.FindTemplate(task.template_name);
    if (callee == nullptr) {
      return Fail(task_path + ".template",
                  absl::StrCat("unknown template '", task.template_name, "'"),
                  internal::SuggestFix(task.template_name, template_names_, "templates"));
    }
    const std::vector<std::string> inputs = ParameterNames(callee->inputs.parameters);
    const std::vector<Parameter>& args = task.arguments.parameters;
    // Argo ignores an argument the template does not declare; dagd too, unless it looks like a
    // misspelt input that the call does not pass (then the input would silently keep its
    // default).
    for (size_t k = 0; k < args.size(); ++k) {
      if (std::find(inputs.begin(), inputs.end(), args[k].name) != inputs.end()) continue;
      const std::string meant = internal::ClosestMatch(args[k].name, inputs);
      if (meant.empty() || std::any_of(args.begin(), args.end(),
                                       [&](const Parameter& a) { return a.name == meant; })) {
        continue;
      }
      return Fail(
          absl::StrCat(task_path, ".arguments.parameters[", k, "]"),
          absl::StrCat("template '", callee->name, "' has no input parameter '", args[k].name, "'"),
          absl::StrCat("did you mean '", meant, "'?"));
    }
    for (const Parameter& input : callee->inputs.parameters) {
      if (!IsRequiredInput(input)) continue;
      const bool passed = std::any_of(args.begin(), args.end(),
                                      [&](const Parameter& a) { return a.name == input.name; });
      if (!passed) {
        return Fail(
            task_path + ".arguments",
            absl::StrCat("task '", task.name, "' does not pass input parameter '", input.name,
                         "' of template '", callee->name, "'"),
            absl::StrCat("add it under arguments.parameters: {name: ", input.name, ", value: …}"));
      }
    }
    const std::vector<Artifact>& artifacts = task.arguments.artifacts;
    for (size_t k = 0; k < artifacts.size(); ++k) {
      RETURN_IF_ERROR(CheckArtifact(artifacts[k], callee, "arguments",
                                    absl::StrCat(task_path, ".arguments.artifacts[", k, "]")));
    }
    for (const Artifact& input : callee->inputs.artifacts) {
      if (input.optional || input.raw || !input.key.empty() || NamesOtherRepository(input)) {
        continue;
      }
      const bool passed = std::any_of(artifacts.begin(), artifacts.end(),
                                      [&](const Artifact& a) { return a.name == input.name; });
      if (!passed) {
        return Fail(task_path + ".arguments",
                    absl::StrCat("task '", task.name, "' does not pass input artifact '",
                                 input.name, "' of template '", callee->name, "'"),
                    absl::StrCat("add it under arguments.artifacts: {name: ", input.name,
                                 ", from: \"{{tasks.X.outputs.artifacts.Y}}\"} (steps.X in a "
                                 "steps template), or mark the input optional"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckDag(const Template& tmpl, const std::string& path) {
    const DagTemplate& dag = *tmpl.dag;
    std::map<std::string, size_t> index;
    std::vector<std::string> task_names;
    for (size_t j = 0; j < dag.tasks.size(); ++j) {
      auto [it, inserted] = index.emplace(dag.tasks[j].name, j);
      if (!inserted) {
        return Fail(absl::StrCat(path, ".tasks[", j, "].name"),
                    absl::StrCat("duplicate task name '", dag.tasks[j].name, "'"),
                    absl::StrCat("task names must be unique within a dag; the first is at line ",
                                 Where(absl::StrCat(path, ".tasks[", it->second, "]")).line));
      }
      task_names.push_back(dag.tasks[j].name);
    }
    const std::string tasks_label = absl::StrCat("tasks of dag '", tmpl.name, "'");

    for (size_t j = 0; j < dag.tasks.size(); ++j) {
      const DagTask& task = dag.tasks[j];
      const std::string task_path = absl::StrCat(path, ".tasks[", j, "]");
      if (absl::Status call = CheckTaskCall(task, task_path); !call.ok()) {
        Collect(std::move(call));
        continue;
      }
      if (!task.dependencies.empty() && !task.depends.empty()) {
        return Fail(task_path + ".depends",
                    absl::StrCat("task '", task.name, "' has both dependencies and depends"),
                    "keep one: depends \"a && b\" says the same as dependencies [a, b]");
      }
      absl::StatusOr<std::vector<DependencyRef>> refs = NamedDependencies(task);
      if (!refs.ok()) {
        return Fail(task_path + ".depends",
                    absl::StrCat("bad depends expression: ", refs.status().message()),
                    "join task names (optionally with .Succeeded, .Failed, .Errored, .Skipped, "
                    ".Omitted, .Daemoned, .AnySucceeded, .AllFailed) with &&, || and !");
      }
      for (const DependencyRef& ref : *refs) {
        if (index.count(ref.name) == 0) {
          return Fail(absl::StrCat(task_path, ".", ref.field),
                      absl::StrCat("unknown task '", ref.name, "'"),
                      internal::SuggestFix(ref.name, task_names, tasks_label));
        }
      }
    }

    const TaskGraph graph = BuildTaskGraph(dag);
    std::vector<TaskVertex> dfs_path;
    std::vector<TaskVertex> cycle;
    boost::depth_first_search(graph, boost::visitor(CycleRecorder(&dfs_path, &cycle)));
    if (!cycle.empty()) {
      std::vector<std::string> names;
      for (TaskVertex v : cycle) names.push_back(dag.tasks[v].name);
      const DagTask& first = dag.tasks[cycle.front()];
      return Fail(absl::StrCat(path, ".tasks[", cycle.front(), "].",
                               first.depends.empty() ? "dependencies" : "depends"),
                  absl::StrCat("dependency cycle: ", absl::StrJoin(names, " -> ")),
                  "each task depends on the next; remove one of these dependencies");
    }

    for (absl::string_view target : absl::StrSplit(dag.target, ' ', absl::SkipEmpty())) {
      // A target such as "{{workflow.parameters.target}}" is only known at run time.
      if (absl::StrContains(target, "{{")) continue;
      if (index.count(std::string(target)) == 0) {
        return Fail(path + ".target", absl::StrCat("unknown task '", target, "'"),
                    internal::SuggestFix(target, task_names, tasks_label));
      }
    }
    return CheckTaskReferences(dag, path, index, graph);
  }

  // `{{tasks.X.…}}` in a task's arguments, when and withParam names a task X that the task
  // (transitively) depends on: only then is X's output there when the task starts.
  absl::Status CheckTaskReferences(const DagTemplate& dag, const std::string& path,
                                   const std::map<std::string, size_t>& index,
                                   const TaskGraph& graph) const {
    for (size_t j = 0; j < dag.tasks.size(); ++j) {
      const DagTask& task = dag.tasks[j];
      const std::string task_path = absl::StrCat(path, ".tasks[", j, "]");
      std::vector<Text> texts = {{task_path + ".when", task.when},
                                 {task_path + ".withParam", task.with_param}};
      for (size_t k = 0; k < task.arguments.parameters.size(); ++k) {
        texts.push_back({absl::StrCat(task_path, ".arguments.parameters[", k, "].value"),
                         task.arguments.parameters[k].value.value_or("")});
      }
      for (size_t k = 0; k < task.arguments.artifacts.size(); ++k) {
        texts.push_back({absl::StrCat(task_path, ".arguments.artifacts[", k, "].from"),
                         task.arguments.artifacts[k].from});
      }
      std::set<size_t> ancestors;
      std::vector<size_t> pending = {j};
      while (!pending.empty()) {
        const size_t v = pending.back();
        pending.pop_back();
        for (auto [e, end] = boost::out_edges(v, graph); e != end; ++e) {
          const size_t dep = boost::target(*e, graph);
          if (ancestors.insert(dep).second) pending.push_back(dep);
        }
      }
      for (const Text& text : texts) {
        for (const std::string& tag : FindDagdTags(text.value)) {
          const std::vector<std::string> parts = absl::StrSplit(tag, '.');
          // "tasks.name" (two parts) is the current task's own name, not a reference.
          if (parts.size() < 3 || parts[0] != "tasks") continue;
          const std::string& referenced = parts[1];
          auto it = index.find(referenced);
          if (it == index.end()) {
            std::vector<std::string> names;
            for (const auto& entry : index) names.push_back(entry.first);
            return Fail(text.path,
                        absl::StrCat("{{", tag, "}} names unknown task '", referenced, "'"),
                        internal::SuggestFix(referenced, names, "tasks of this dag"));
          }
          if (ancestors.count(it->second) == 0) {
            return Fail(text.path,
                        absl::StrCat("{{", tag, "}} refers to task '", referenced,
                                     "', which task '", task.name, "' does not depend on"),
                        absl::StrCat("add '", referenced, "' to the depends of task '", task.name,
                                     "' so its outputs exist when '", task.name, "' starts"));
          }
        }
      }
    }
    return absl::OkStatus();
  }

  // Every step calls a known template correctly, step names are unique in the template (Argo's
  // rule), and `{{steps.X.…}}` in a step's arguments, when and loop names a step of an earlier
  // group: only those have finished when the step starts.
  absl::Status CheckSteps(const Template& tmpl, const std::string& path) {
    std::map<std::string, std::string> first_path;  // step name -> where it is written
    std::set<std::string> earlier;                  // steps of the groups before this one
    std::set<std::string> all;
    for (const std::vector<DagTask>& group : tmpl.steps->groups) {
      for (const DagTask& step : group) all.insert(step.name);
    }
    for (size_t g = 0; g < tmpl.steps->groups.size(); ++g) {
      const std::vector<DagTask>& group = tmpl.steps->groups[g];
      for (size_t j = 0; j < group.size(); ++j) {
        const DagTask& step = group[j];
        const std::string step_path = absl::StrCat(path, "[", g, "][", j, "]");
        auto [it, inserted] = first_path.emplace(step.name, step_path);
        if (!inserted) {
          return Fail(step_path + ".name", absl::StrCat("duplicate step name '", step.name, "'"),
                      absl::StrCat("step names must be unique within a steps template; the first "
                                   "is at line ",
                                   Where(it->second).line));
        }
        if (absl::Status call = CheckTaskCall(step, step_path); !call.ok()) {
          Collect(std::move(call));
          continue;
        }
        std::vector<Text> texts = {{step_path + ".when", step.when},
                                   {step_path + ".withParam", step.with_param}};
        for (size_t k = 0; k < step.arguments.parameters.size(); ++k) {
          texts.push_back({absl::StrCat(step_path, ".arguments.parameters[", k, "].value"),
                           step.arguments.parameters[k].value.value_or("")});
        }
        for (const Text& text : texts) {
          for (const std::string& tag : FindDagdTags(text.value)) {
            const std::vector<std::string> parts = absl::StrSplit(tag, '.');
            if (parts.size() < 3 || parts[0] != "steps" || earlier.count(parts[1]) > 0) continue;
            if (all.count(parts[1]) > 0) {
              return Fail(
                  text.path,
                  absl::StrCat("{{", tag, "}} refers to step '", parts[1],
                               "', which runs in the same group as '", step.name, "' or later"),
                  absl::StrCat("move '", step.name, "' into a group after the one of '", parts[1],
                               "'"));
            }
            std::vector<std::string> names(all.begin(), all.end());
            return Fail(text.path,
                        absl::StrCat("{{", tag, "}} names unknown step '", parts[1], "'"),
                        internal::SuggestFix(parts[1], names, "steps of this template"));
          }
        }
      }
      for (const DagTask& step : group) earlier.insert(step.name);
    }
    return absl::OkStatus();
  }

  void Collect(absl::Status status) {
    if (!status.ok()) problems_.push_back(std::move(status));
  }

  const Workflow& wf_;
  std::vector<std::string> template_names_;
  std::vector<absl::Status> problems_;
};

}  // namespace

std::vector<absl::Status> FindWorkflowProblems(const Workflow& workflow) {
  if (workflow.kind == WorkflowKind::kConfigMap) return {};  // data only
  return Validator(workflow).Run();
}

absl::Status ValidateWorkflow(const Workflow& workflow) {
  std::vector<absl::Status> problems = FindWorkflowProblems(workflow);
  return problems.empty() ? absl::OkStatus() : problems.front();
}

absl::StatusOr<std::map<std::string, std::string>> ResolveWorkflowArguments(
    const Workflow& workflow, const std::map<std::string, std::string>& submitted) {
  const std::vector<Parameter>& declared = workflow.arguments.parameters;
  const std::vector<std::string> names = ParameterNames(declared);
  auto where = [&](const std::string& path) {
    auto it = workflow.field_locations.find(path);
    if (it == workflow.field_locations.end()) {
      it = workflow.field_locations.find("spec.arguments");
    }
    return it == workflow.field_locations.end() ? SourceLocation{workflow.file} : it->second;
  };
  for (const auto& [name, value] : submitted) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return internal::WorkflowError(
          where("spec.arguments.parameters"), "spec.arguments.parameters",
          absl::StrCat("submitted parameter '", name, "' is not declared"),
          internal::SuggestFix(name, names, "declared parameters"));
    }
  }
  std::map<std::string, std::string> resolved;
  for (size_t k = 0; k < declared.size(); ++k) {
    const Parameter& param = declared[k];
    const std::string path = absl::StrCat("spec.arguments.parameters[", k, "]");
    std::optional<std::string> value = param.value ? param.value : param.default_value;
    if (auto it = submitted.find(param.name); it != submitted.end()) value = it->second;
    if (!value) {
      return internal::WorkflowError(
          where(path), path, absl::StrCat("parameter '", param.name, "' has no value"),
          absl::StrCat("give it a value here or submit one (", param.name, "=…)"));
    }
    if (!param.enum_values.empty() && std::find(param.enum_values.begin(), param.enum_values.end(),
                                                *value) == param.enum_values.end()) {
      return internal::WorkflowError(
          where(path), path,
          absl::StrCat("value '", *value, "' of parameter '", param.name,
                       "' is not one of its enum values"),
          absl::StrCat("use one of: ", absl::StrJoin(param.enum_values, ", ")));
    }
    resolved[param.name] = *value;
  }
  return resolved;
}

std::vector<std::string> TopologicalTaskOrder(const DagTemplate& dag) {
  // Edges run from a task to its dependencies, and topological_sort emits a vertex only after
  // everything it reaches: dependencies come first, and independent tasks keep their order.
  const TaskGraph graph = BuildTaskGraph(dag);
  std::vector<TaskVertex> order;
  boost::topological_sort(graph, std::back_inserter(order));
  std::vector<std::string> names;
  for (TaskVertex v : order) names.push_back(dag.tasks[v].name);
  return names;
}

}  // namespace dagd::engine
