// `dagctl graph`: a workflow's DAG, or a run's, as Graphviz DOT.
//
// The graph is the entrypoint's task graph (engine/task_graph.h, which the run page draws too):
// one vertex per task, an edge from each task to every task that depends on it. A task that
// calls a dag template is one vertex (drawn as a component). For a run, each vertex takes the
// phase of the run's node for that task, drawn as its fill color. An entrypoint that is not a
// dag is a single vertex.
//
// Pure functions; the DOT text comes from Boost.Graph's write_graphviz.
#ifndef DAGD_CMD_DAGCTL_GRAPH_H_
#define DAGD_CMD_DAGCTL_GRAPH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dagd/v1/run.pb.h"
#include "engine/workflow.h"
#include "nlohmann/json.hpp"

namespace dagd::dagctl {

struct DagVertex {
  std::string task;
  std::string template_name;
  // True when the task calls a dag template.
  bool nested_dag = false;
  // The run node's phase; PHASE_UNSPECIFIED for a workflow file (or a task with no node yet).
  v1::Phase phase = v1::PHASE_UNSPECIFIED;
};

struct DagGraph {
  std::string name;  // the workflow's name or generateName, or the run id
  std::vector<DagVertex> vertices;
  // (dependency, dependent), as indexes into `vertices`, in task order.
  std::vector<std::pair<size_t, size_t>> edges;
};

// The DAG of `workflow`'s entrypoint. InvalidArgument when a `depends` expression does not parse
// or names an unknown task (validate the workflow first for the full checks).
absl::StatusOr<DagGraph> BuildDagGraph(const engine::Workflow& workflow);

// Sets each vertex's phase from `run`: the node whose parent is the run's root node and whose
// display name is the task (for a fan-out, its task group).
void ApplyRunPhases(const v1::Run& run, DagGraph* graph);

// The graph as DOT: `digraph "NAME" {...}`, left to right, boxes labelled with the task (and the
// phase, for a run), filled with the phase's color. Stable: vertices and edges in task order.
std::string RenderDot(const DagGraph& graph);

// {"name": …, "nodes": [{"task", "template", "phase"}], "edges": [{"from", "to"}]}; "phase" is
// only present for a run.
nlohmann::ordered_json GraphJson(const DagGraph& graph);

// The fill color of a phase in the DOT output: "white" for PHASE_UNSPECIFIED.
std::string PhaseFillColor(v1::Phase phase);

}  // namespace dagd::dagctl

#endif  // DAGD_CMD_DAGCTL_GRAPH_H_
