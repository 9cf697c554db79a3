#include "engine/template_refs.h"

#include <algorithm>
#include <deque>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/internal/diagnostics.h"
#include "engine/parser.h"
#include "engine/status_macros.h"

namespace dagd::engine {
namespace {

// Calls `visit(template_name, template_ref)` for every task, step and task hook of `tmpl` (a
// Template or a const Template).
template <typename TemplateT, typename Visit>
void ForEachTaskCall(TemplateT& tmpl, Visit visit) {
  auto each = [&](auto& task) {
    visit(task.template_name, task.template_ref);
    if (task.exit_hook) visit(task.exit_hook->template_name, task.exit_hook->template_ref);
    for (auto& hook : task.hooks) visit(hook.template_name, hook.template_ref);
  };
  if (tmpl.dag) {
    for (auto& task : tmpl.dag->tasks) each(task);
  }
  if (tmpl.steps) {
    for (auto& group : tmpl.steps->groups) {
      for (auto& step : group) each(step);
    }
  }
}

std::string ImportedName(const std::string& document, const std::string& template_name) {
  return absl::StrCat(document, "/", template_name);
}

// "spec.templates[3]" and the paths under it, re-indexed: recorded locations follow a template
// copied from one document's list to another's.
void CopyTemplateLocations(const Workflow& from, size_t from_index, size_t to_index, Workflow* to) {
  const std::string prefix = absl::StrCat("spec.templates[", from_index, "]");
  const std::string target = absl::StrCat("spec.templates[", to_index, "]");
  for (auto it = from.field_locations.lower_bound(prefix);
       it != from.field_locations.end() && absl::StartsWith(it->first, prefix); ++it) {
    const std::string rest = it->first.substr(prefix.size());
    // "spec.templates[1]" must not take "spec.templates[12]" along.
    if (!rest.empty() && rest[0] != '.' && rest[0] != '[') continue;
    to->field_locations[target + rest] = it->second;
  }
}

class Resolver {
 public:
  Resolver(Workflow* workflow, const TemplateLibrary& library) : wf_(workflow), library_(library) {}

  absl::Status Run() {
    if (wf_->workflow_template_ref) RETURN_IF_ERROR(JoinWorkflowTemplate());
    // The workflow's own templates call each other by their plain names.
    const size_t own = wf_->templates.size();
    for (size_t i = 0; i < own; ++i) RETURN_IF_ERROR(RewriteCalls(&wf_->templates[i], nullptr));
    if (wf_->exit_hook) {
      RETURN_IF_ERROR(
          RewriteCall(&wf_->exit_hook->template_name, &wf_->exit_hook->template_ref, nullptr));
    }
    for (LifecycleHook& hook : wf_->hooks) {
      RETURN_IF_ERROR(RewriteCall(&hook.template_name, &hook.template_ref, nullptr));
    }
    while (!pending_.empty()) {
      auto [document, index] = pending_.front();
      pending_.pop_front();
      Template copy = document->templates[index];
      copy.name = ImportedName(document->name, copy.name);
      RETURN_IF_ERROR(RewriteCalls(&copy, document));
      CopyTemplateLocations(*document, index, wf_->templates.size(), wf_);
      wf_->templates.push_back(std::move(copy));
    }
    return absl::OkStatus();
  }

 private:
  // The document `ref` names, checked for kind.
  absl::StatusOr<const Workflow*> Document(const TemplateRef& ref) const {
    const WorkflowKind wanted = ref.cluster_scope ? WorkflowKind::kClusterWorkflowTemplate
                                                  : WorkflowKind::kWorkflowTemplate;
    auto it = library_.find(ref.name);
    if (it == library_.end()) {
      return internal::WorkflowError(
          ref.location, ref.path,
          absl::StrCat(WorkflowKindName(wanted), " '", ref.name, "' is not stored in dagd"),
          absl::StrCat("apply it first (dagctl apply -f FILE), or correct the name"));
    }
    if (it->second.kind != wanted) {
      return internal::WorkflowError(
          ref.location, ref.path,
          absl::StrCat("'", ref.name, "' is a ", WorkflowKindName(it->second.kind), ", not a ",
                       WorkflowKindName(wanted)),
          ref.cluster_scope ? "remove `clusterScope: true`"
                            : "add `clusterScope: true` to refer to a ClusterWorkflowTemplate");
    }
    return &it->second;
  }

  // Queues template `name` of `document` for import (once) and returns its imported name.
  absl::StatusOr<std::string> Import(const Workflow* document, const std::string& name,
                                     const TemplateRef* ref) {
    for (size_t i = 0; i < document->templates.size(); ++i) {
      if (document->templates[i].name != name) continue;
      std::string imported = ImportedName(document->name, name);
      if (imported_.insert(imported).second) pending_.emplace_back(document, i);
      return imported;
    }
    std::vector<std::string> names;
    for (const Template& t : document->templates) names.push_back(t.name);
    const std::string what = absl::StrCat(WorkflowKindName(document->kind), " '", document->name,
                                          "' has no template '", name, "'");
    if (ref != nullptr) {
      return internal::WorkflowError(ref->location, ref->path + ".template", what,
                                     internal::SuggestFix(name, names, "its templates"));
    }
    // A call inside the stored document itself: that document was checked when it was applied,
    // so this only happens to documents stored by an older dagd.
    return internal::WorkflowError(SourceLocation{document->file}, "templateRef", what,
                                   "apply a corrected version of it");
  }

  // One call: `*ref` (a templateRef) or, inside an imported document, a plain template name.
  absl::Status RewriteCall(std::string* template_name, std::optional<TemplateRef>* ref,
                           const Workflow* document) {
    if (ref->has_value()) {
      ASSIGN_OR_RETURN(const Workflow* target, Document(**ref));
      ASSIGN_OR_RETURN(*template_name, Import(target, (*ref)->template_name, &**ref));
      ref->reset();
    } else if (document != nullptr && !template_name->empty()) {
      ASSIGN_OR_RETURN(*template_name, Import(document, *template_name, nullptr));
    }
    return absl::OkStatus();
  }

  absl::Status RewriteCalls(Template* tmpl, const Workflow* document) {
    absl::Status status;
    ForEachTaskCall(*tmpl, [&](std::string& name, std::optional<TemplateRef>& ref) {
      if (status.ok()) status = RewriteCall(&name, &ref, document);
    });
    return status;
  }

  // spec.workflowTemplateRef: the document's spec with this workflow's fields over it.
  absl::Status JoinWorkflowTemplate() {
    const TemplateRef ref = *wf_->workflow_template_ref;
    ASSIGN_OR_RETURN(const Workflow* base, Document(ref));
    Workflow joined = *base;
    Workflow& own = *wf_;
    joined.kind = own.kind;
    joined.name = own.name;
    joined.generate_name = own.generate_name;
    joined.namespace_name = own.namespace_name;
    joined.labels = own.labels;
    joined.file = own.file;
    joined.workflow_template_ref.reset();
    if (!own.entrypoint.empty()) joined.entrypoint = own.entrypoint;
    for (const Parameter& parameter : own.arguments.parameters) {
      bool replaced = false;
      for (Parameter& existing : joined.arguments.parameters) {
        if (existing.name != parameter.name) continue;
        existing = parameter;
        replaced = true;
      }
      if (!replaced) joined.arguments.parameters.push_back(parameter);
    }
    for (size_t i = 0; i < own.templates.size(); ++i) {
      size_t slot = joined.templates.size();
      for (size_t k = 0; k < joined.templates.size(); ++k) {
        if (joined.templates[k].name == own.templates[i].name) slot = k;
      }
      if (slot == joined.templates.size()) joined.templates.emplace_back();
      joined.templates[slot] = own.templates[i];
      CopyTemplateLocations(own, i, slot, &joined);
    }
    if (!own.runner.empty()) joined.runner = own.runner;
    if (own.parallelism) joined.parallelism = own.parallelism;
    if (own.active_deadline_seconds) joined.active_deadline_seconds = own.active_deadline_seconds;
    if (own.exit_hook) joined.exit_hook = own.exit_hook;
    for (const LifecycleHook& hook : own.hooks) {  // merged by name, as Argo merges the map
      auto same = std::find_if(joined.hooks.begin(), joined.hooks.end(),
                               [&](const LifecycleHook& h) { return h.name == hook.name; });
      if (same == joined.hooks.end()) {
        joined.hooks.push_back(hook);
      } else {
        *same = hook;
      }
    }
    if (own.kubernetes.is_object()) {
      if (!joined.kubernetes.is_object()) joined.kubernetes = nlohmann::json::object();
      for (const auto& [key, value] : own.kubernetes.items()) joined.kubernetes[key] = value;
    }
    for (const auto& [path, location] : own.field_locations) {
      if (!absl::StartsWith(path, "spec.templates")) joined.field_locations[path] = location;
    }
    *wf_ = std::move(joined);
    return absl::OkStatus();
  }

  Workflow* wf_;
  const TemplateLibrary& library_;
  std::set<std::string> imported_;
  std::deque<std::pair<const Workflow*, size_t>> pending_;  // (document, template index)
};

}  // namespace

std::vector<TemplateRef> ReferencedDocuments(const Workflow& workflow) {
  std::vector<TemplateRef> refs;
  std::set<std::string> seen;
  auto add = [&](const std::optional<TemplateRef>& ref) {
    if (!ref || !seen.insert(ref->name).second) return;
    TemplateRef document = *ref;
    document.template_name.clear();
    refs.push_back(std::move(document));
  };
  add(workflow.workflow_template_ref);
  if (workflow.exit_hook) add(workflow.exit_hook->template_ref);
  for (const LifecycleHook& hook : workflow.hooks) add(hook.template_ref);
  for (const Template& tmpl : workflow.templates) {
    ForEachTaskCall(tmpl,
                    [&](const std::string&, const std::optional<TemplateRef>& ref) { add(ref); });
  }
  return refs;
}

absl::Status ResolveTemplateRefs(Workflow* workflow, const TemplateLibrary& library) {
  return Resolver(workflow, library).Run();
}

absl::StatusOr<Workflow> ParseRunSpec(std::string_view yaml_text, std::string_view file_name) {
  ASSIGN_OR_RETURN(std::vector<Workflow> documents, ParseWorkflowDocuments(yaml_text, file_name));
  TemplateLibrary library;
  for (size_t i = 1; i < documents.size(); ++i) {
    std::string name = documents[i].name;
    library.emplace(std::move(name), std::move(documents[i]));
  }
  Workflow workflow = std::move(documents.front());
  RETURN_IF_ERROR(ResolveTemplateRefs(&workflow, library));
  return workflow;
}

std::string JoinRunSpec(std::string_view workflow_yaml, const std::vector<std::string>& documents) {
  std::string spec(workflow_yaml);
  for (const std::string& document : documents) {
    if (!spec.empty() && spec.back() != '\n') spec += '\n';
    absl::StrAppend(&spec, "---\n", document);
  }
  return spec;
}

}  // namespace dagd::engine
