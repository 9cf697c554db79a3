#include "engine/task_graph.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "engine/depends.h"

namespace dagd::engine {

absl::StatusOr<TaskGraph> BuildTaskGraph(const Workflow& workflow) {
  TaskGraph graph;
  const Template* entry = workflow.FindTemplate(workflow.entrypoint);
  if (entry == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("the entrypoint \"", workflow.entrypoint, "\" is not a template"));
  }
  if (!entry->dag.has_value()) {
    graph.vertices.push_back({entry->name, entry->name, false});
    return graph;
  }
  graph.entrypoint_is_dag = true;
  std::map<std::string, size_t> index;
  for (const DagTask& task : entry->dag->tasks) {
    const Template* called = workflow.FindTemplate(task.template_name);
    index[task.name] = graph.vertices.size();
    graph.vertices.push_back(
        {task.name, task.template_name, called != nullptr && called->dag.has_value()});
  }
  for (const DagTask& task : entry->dag->tasks) {
    std::vector<std::string> names = task.dependencies;
    if (!task.depends.empty()) {
      absl::StatusOr<DependsExpression> depends = DependsExpression::Parse(task.depends);
      if (!depends.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("task ", task.name, ": ", depends.status().message()));
      }
      names.insert(names.end(), depends->tasks().begin(), depends->tasks().end());
    }
    std::set<size_t> seen;  // "A && A.Failed" is one edge
    for (const std::string& name : names) {
      auto from = index.find(name);
      if (from == index.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("task ", task.name, " depends on ", name, ", which is not a task"));
      }
      if (seen.insert(from->second).second)
        graph.edges.emplace_back(from->second, index.at(task.name));
    }
  }
  return graph;
}

}  // namespace dagd::engine
