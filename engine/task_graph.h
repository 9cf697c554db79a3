// The task graph of a workflow's entrypoint: one vertex per dag task, an edge from each task to
// every task that depends on it (`dependencies` and the tasks a `depends` expression names). What
// `dagctl graph` prints and the run page draws. A task that calls a dag template is one vertex
// (nested_dag); an entrypoint that is not a dag is a single vertex named after the template.
// Pure functions on the parsed model; thread-safe.
#ifndef DAGD_ENGINE_TASK_GRAPH_H_
#define DAGD_ENGINE_TASK_GRAPH_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/workflow.h"

namespace dagd::engine {

struct TaskVertex {
  std::string task;           // the task's name (the template's, for a non-dag entrypoint)
  std::string template_name;  // the template it calls
  bool nested_dag = false;    // the template is a dag
};

struct TaskGraph {
  std::vector<TaskVertex> vertices;  // in task order
  // (dependency, dependent) as indexes into `vertices`, in task order.
  std::vector<std::pair<size_t, size_t>> edges;
  bool entrypoint_is_dag = false;
};

// The graph of `workflow`'s entrypoint. InvalidArgument when the entrypoint is not a template, or
// a `depends` expression does not parse or names an unknown task (ValidateWorkflow reports the
// same with line numbers).
absl::StatusOr<TaskGraph> BuildTaskGraph(const Workflow& workflow);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_TASK_GRAPH_H_
