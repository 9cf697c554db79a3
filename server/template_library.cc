#include "server/template_library.h"

#include <deque>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/parser.h"

namespace dagd::server {

absl::StatusOr<std::vector<TemplateDocument>> LoadReferencedDocuments(
    storage::Store* store, const engine::Workflow& workflow,
    const std::map<std::string, TemplateDocument>& same_file) {
  std::vector<TemplateDocument> documents;
  std::set<std::string> seen;
  std::deque<engine::TemplateRef> queue;
  for (engine::TemplateRef& ref : engine::ReferencedDocuments(workflow)) queue.push_back(ref);
  while (!queue.empty()) {
    const engine::TemplateRef ref = queue.front();
    queue.pop_front();
    if (!seen.insert(ref.name).second) continue;
    if (documents.size() == engine::kMaxWorkflowDocuments) {
      return absl::InvalidArgumentError(
          absl::StrCat(ref.location.ToString(), ": ", ref.path,
                       ": the workflow refers to more "
                       "than ",
                       engine::kMaxWorkflowDocuments,
                       " WorkflowTemplates, directly or through each other; merge some of them"));
    }
    if (auto it = same_file.find(ref.name); it != same_file.end()) {
      documents.push_back(it->second);
    } else {
      auto stored = store->GetWorkflow(ref.name, 0);
      if (absl::IsNotFound(stored.status())) continue;
      if (!stored.ok()) return stored.status();
      auto parsed =
          engine::ParseWorkflow(stored->yaml, absl::StrCat(stored->name, "@v", stored->version));
      if (!parsed.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "stored ", stored->name, " version ", stored->version, " no longer parses (",
            parsed.status().message(), "); apply a corrected version of it"));
      }
      documents.push_back(TemplateDocument{stored->yaml, *std::move(parsed)});
    }
    for (engine::TemplateRef& next : engine::ReferencedDocuments(documents.back().workflow)) {
      queue.push_back(std::move(next));
    }
  }
  return documents;
}

engine::TemplateLibrary ToLibrary(const std::vector<TemplateDocument>& documents) {
  engine::TemplateLibrary library;
  for (const TemplateDocument& document : documents) {
    library.emplace(document.workflow.name, document.workflow);
  }
  return library;
}

absl::StatusOr<std::string> BuildRunSpec(storage::Store* store, const std::string& yaml,
                                         const engine::Workflow& workflow) {
  auto documents = LoadReferencedDocuments(store, workflow, {});
  if (!documents.ok()) return documents.status();
  std::vector<std::string> texts;
  for (TemplateDocument& document : *documents) texts.push_back(std::move(document.yaml));
  return engine::JoinRunSpec(yaml, texts);
}

}  // namespace dagd::server
