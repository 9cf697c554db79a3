#include "engine/workflow.h"

namespace dagd::engine {

std::string SourceLocation::ToString() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

const Template* Workflow::FindTemplate(const std::string& template_name) const {
  for (const Template& t : templates) {
    if (t.name == template_name) return &t;
  }
  return nullptr;
}

std::string Workflow::DisplayName() const {
  if (!name.empty()) return name;
  std::string out = generate_name;
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

const char* NodePhaseName(NodePhase phase) {
  switch (phase) {
    case NodePhase::kPending:
      return "Pending";
    case NodePhase::kRunning:
      return "Running";
    case NodePhase::kSucceeded:
      return "Succeeded";
    case NodePhase::kFailed:
      return "Failed";
    case NodePhase::kError:
      return "Error";
    case NodePhase::kSkipped:
      return "Skipped";
    case NodePhase::kOmitted:
      return "Omitted";
  }
  return "Unknown";
}

bool ParseNodePhase(const std::string& text, NodePhase* phase) {
  static constexpr NodePhase kAll[] = {
      NodePhase::kPending, NodePhase::kRunning, NodePhase::kSucceeded, NodePhase::kFailed,
      NodePhase::kError,   NodePhase::kSkipped, NodePhase::kOmitted};
  for (NodePhase p : kAll) {
    if (text == NodePhaseName(p)) {
      *phase = p;
      return true;
    }
  }
  return false;
}

bool IsFinal(NodePhase phase) {
  return phase != NodePhase::kPending && phase != NodePhase::kRunning;
}

const char* TemplateTypeName(TemplateType type) {
  switch (type) {
    case TemplateType::kDag:
      return "dag";
    case TemplateType::kSteps:
      return "steps";
    case TemplateType::kContainer:
      return "container";
    case TemplateType::kScript:
      return "script";
    case TemplateType::kAnsible:
      return "ansible";
    case TemplateType::kSuspend:
      return "suspend";
    case TemplateType::kUnsupported:
      return "unsupported";
  }
  return "unknown";
}

const char* WorkflowKindName(WorkflowKind kind) {
  switch (kind) {
    case WorkflowKind::kWorkflow:
      return "Workflow";
    case WorkflowKind::kWorkflowTemplate:
      return "WorkflowTemplate";
    case WorkflowKind::kClusterWorkflowTemplate:
      return "ClusterWorkflowTemplate";
    case WorkflowKind::kConfigMap:
      return "ConfigMap";
  }
  return "Unknown";
}

bool IsCredentialName(std::string_view name) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (name.empty() || !alnum(name.front())) return false;
  for (char c : name) {
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

const char* RetryPolicyName(RetryPolicy policy) {
  switch (policy) {
    case RetryPolicy::kAlways:
      return "Always";
    case RetryPolicy::kOnFailure:
      return "OnFailure";
    case RetryPolicy::kOnError:
      return "OnError";
    case RetryPolicy::kOnTransientError:
      return "OnTransientError";
  }
  return "Unknown";
}

}  // namespace dagd::engine
