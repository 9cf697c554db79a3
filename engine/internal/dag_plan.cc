#include "engine/internal/dag_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace dagd::engine::internal {
namespace {

void CollectAncestors(const DagPlan& plan, const std::string& task, std::set<std::string>* out) {
  auto it = plan.deps.find(task);
  if (it == plan.deps.end()) return;
  for (const std::string& dep : it->second) {
    if (out->insert(dep).second) CollectAncestors(plan, dep, out);
  }
}

}  // namespace

DagPlan BuildDagPlan(const Template& tmpl, const std::string* target_override) {
  DagPlan plan;
  plan.tmpl = &tmpl;
  const DagTemplate& dag = *tmpl.dag;
  for (const DagTask& task : dag.tasks) plan.tasks.emplace(task.name, &task);

  for (const DagTask& task : dag.tasks) {
    std::set<std::string>& deps = plan.deps[task.name];
    if (task.depends.empty()) {
      plan.depends.emplace(task.name, DependsExpression::FromDependencies(task.dependencies));
    } else {
      absl::StatusOr<DependsExpression> parsed = DependsExpression::Parse(task.depends);
      if (!parsed.ok()) {
        plan.task_errors[task.name] = std::string(parsed.status().message());
        continue;
      }
      plan.depends.emplace(task.name, *std::move(parsed));
    }
    for (const std::string& dep : plan.depends.at(task.name).tasks()) {
      if (plan.tasks.count(dep) == 0) {
        plan.task_errors[task.name] = absl::StrCat("depends on unknown task '", dep, "'");
      } else {
        deps.insert(dep);
      }
    }
  }
  // A task that fails to parse still waits for nothing, so it errors as soon as the DAG starts.
  for (const auto& [name, error] : plan.task_errors) plan.deps[name].clear();

  const std::string& target_text = target_override != nullptr ? *target_override : dag.target;
  if (!target_text.empty()) {
    for (absl::string_view target : absl::StrSplit(target_text, ' ', absl::SkipEmpty())) {
      if (plan.tasks.count(std::string(target)) == 0) {
        plan.error =
            absl::StrCat("dag target '", target, "' is not a task of template '", tmpl.name, "'");
        return plan;
      }
      plan.targets.emplace_back(target);
    }
  } else {
    std::set<std::string> depended_on;
    for (const auto& [name, deps] : plan.deps) depended_on.insert(deps.begin(), deps.end());
    for (const auto& [name, task] : plan.tasks) {
      if (depended_on.count(name) == 0) plan.targets.push_back(name);  // map order: sorted
    }
  }

  for (const auto& [name, task] : plan.tasks) CollectAncestors(plan, name, &plan.ancestors[name]);

  std::set<std::string> reached(plan.targets.begin(), plan.targets.end());
  for (const std::string& target : plan.targets) {
    reached.insert(plan.ancestors[target].begin(), plan.ancestors[target].end());
  }
  // Kahn's algorithm over every task (so that a cycle is found even outside the reached part),
  // always taking the first ready task in written order.
  std::set<std::string> placed;
  while (placed.size() < plan.tasks.size()) {
    const DagTask* next = nullptr;
    for (const DagTask& task : dag.tasks) {
      if (placed.count(task.name) > 0) continue;
      const std::set<std::string>& deps = plan.deps[task.name];
      if (std::all_of(deps.begin(), deps.end(),
                      [&](const std::string& d) { return placed.count(d) > 0; })) {
        next = &task;
        break;
      }
    }
    if (next == nullptr) {
      std::vector<std::string> stuck;
      for (const auto& [name, task] : plan.tasks) {
        if (placed.count(name) == 0) stuck.push_back(name);
      }
      plan.error = absl::StrCat("dependency cycle in template '", tmpl.name, "': tasks ",
                                absl::StrJoin(stuck, ", "),
                                " are in a cycle or depend on one and can never start");
      return plan;
    }
    placed.insert(next->name);
    if (reached.count(next->name) > 0) plan.order.push_back(next);
  }
  return plan;
}

}  // namespace dagd::engine::internal
