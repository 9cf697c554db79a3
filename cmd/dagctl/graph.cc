#include "cmd/dagctl/graph.h"

#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "boost/graph/adjacency_list.hpp"
#include "boost/graph/graphviz.hpp"
#include "cmd/dagctl/format.h"
#include "engine/task_graph.h"

namespace dagd::dagctl {
namespace {

using BoostGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, DagVertex>;

// A DOT double-quoted string.
std::string Quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

absl::StatusOr<DagGraph> BuildDagGraph(const engine::Workflow& workflow) {
  absl::StatusOr<engine::TaskGraph> tasks = engine::BuildTaskGraph(workflow);
  if (!tasks.ok()) return tasks.status();
  DagGraph graph;
  graph.name = !workflow.name.empty() ? workflow.name : workflow.generate_name;
  for (const engine::TaskVertex& vertex : tasks->vertices) {
    graph.vertices.push_back(
        {vertex.task, vertex.template_name, vertex.nested_dag, v1::PHASE_UNSPECIFIED});
  }
  graph.edges = tasks->edges;
  return graph;
}

void ApplyRunPhases(const v1::Run& run, DagGraph* graph) {
  graph->name = run.id();
  // The root node is named after the run (the workflow's exit hook, "<run>.onExit", is the
  // other node without a parent).
  std::string root;
  for (const v1::Node& node : run.nodes()) {
    if (node.name() == run.id()) root = node.name();
  }
  std::map<std::string, v1::Phase> phases;
  for (const v1::Node& node : run.nodes()) {
    if (node.parent() == root && !root.empty()) phases[node.display_name()] = node.phase();
  }
  for (DagVertex& vertex : graph->vertices) {
    auto it = phases.find(vertex.task);
    if (it != phases.end()) {
      vertex.phase = it->second;
    } else if (graph->vertices.size() == 1 && graph->edges.empty() && !root.empty()) {
      // A single-template workflow: the root node is the task.
      for (const v1::Node& node : run.nodes()) {
        if (node.name() == root) vertex.phase = node.phase();
      }
    }
  }
}

std::string PhaseFillColor(v1::Phase phase) {
  switch (phase) {
    case v1::PHASE_SUCCEEDED:
      return "#a8e6a1";
    case v1::PHASE_FAILED:
      return "#f4a7a3";
    case v1::PHASE_ERROR:
      return "#e06666";
    case v1::PHASE_RUNNING:
      return "#9fc5f8";
    case v1::PHASE_PENDING:
      return "#ffe599";
    case v1::PHASE_SKIPPED:
    case v1::PHASE_OMITTED:
      return "#d9d9d9";
    default:
      return "white";
  }
}

std::string RenderDot(const DagGraph& graph) {
  BoostGraph g(graph.vertices.size());
  for (size_t i = 0; i < graph.vertices.size(); ++i) g[i] = graph.vertices[i];
  for (const auto& [from, to] : graph.edges) boost::add_edge(from, to, g);

  const auto vertex_writer = [&g](std::ostream& out, BoostGraph::vertex_descriptor v) {
    const DagVertex& vertex = g[v];
    std::string label = vertex.task;
    if (vertex.phase != v1::PHASE_UNSPECIFIED)
      absl::StrAppend(&label, "\n", PhaseName(vertex.phase));
    out << "[label=" << Quoted(label) << ", tooltip=" << Quoted("template " + vertex.template_name)
        << ", fillcolor=" << Quoted(PhaseFillColor(vertex.phase));
    if (vertex.nested_dag) out << ", shape=component";
    out << "]";
  };
  const auto edge_writer = [](std::ostream&, BoostGraph::edge_descriptor) {};
  const std::string name = graph.name;
  const auto graph_writer = [name](std::ostream& out) {
    out << "label=" << Quoted(name) << ";\n"
        << "labelloc=t;\n"
        << "rankdir=LR;\n"
        << "node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n";
  };
  std::ostringstream out;
  boost::write_graphviz(out, g, vertex_writer, edge_writer, graph_writer);
  return out.str();
}

nlohmann::ordered_json GraphJson(const DagGraph& graph) {
  nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
  for (const DagVertex& vertex : graph.vertices) {
    nlohmann::ordered_json node = {{"task", vertex.task}, {"template", vertex.template_name}};
    if (vertex.phase != v1::PHASE_UNSPECIFIED) node["phase"] = PhaseName(vertex.phase);
    nodes.push_back(std::move(node));
  }
  nlohmann::ordered_json edges = nlohmann::ordered_json::array();
  for (const auto& [from, to] : graph.edges) {
    edges.push_back({{"from", graph.vertices[from].task}, {"to", graph.vertices[to].task}});
  }
  return {{"name", graph.name}, {"nodes", std::move(nodes)}, {"edges", std::move(edges)}};
}

}  // namespace dagd::dagctl
