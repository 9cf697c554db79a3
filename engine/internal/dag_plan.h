// What RunState needs to know about one `dag` template, computed once per run: each task's
// depends expression, the tasks it depends on (directly and transitively), the target tasks,
// and a topological order of the tasks a run of the template reaches. Plain values that point
// into the Workflow they were built from; that Workflow must outlive them.
#ifndef DAGD_ENGINE_INTERNAL_DAG_PLAN_H_
#define DAGD_ENGINE_INTERNAL_DAG_PLAN_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/depends.h"
#include "engine/workflow.h"

namespace dagd::engine::internal {

struct DagPlan {
  const Template* tmpl = nullptr;  // type kDag
  std::map<std::string, const DagTask*> tasks;
  std::map<std::string, DependsExpression> depends;        // per task; absent if it did not parse
  std::map<std::string, std::set<std::string>> deps;       // direct dependencies (known tasks only)
  std::map<std::string, std::set<std::string>> ancestors;  // transitive dependencies
  // Problems that only concern one task (a depends that does not parse, an unknown task name in
  // it): that task's node ends in Error, as Argo does for a depends it cannot evaluate.
  std::map<std::string, std::string> task_errors;
  // `target` split on spaces, or (Argo's default) every task no other task depends on, sorted.
  std::vector<std::string> targets;
  // The targets and their ancestors — the only tasks a run of the template reaches — in a
  // topological order (ties kept in the order the tasks are written).
  std::vector<const DagTask*> order;
  // A problem of the whole template (unknown target, cycle): the DAG node ends in Error.
  std::string error;
};

// REQUIRES: tmpl.dag is set. `target` replaces tmpl.dag->target (RunState passes it with the
// workflow's tags substituted).
DagPlan BuildDagPlan(const Template& tmpl, const std::string* target = nullptr);

}  // namespace dagd::engine::internal

#endif  // DAGD_ENGINE_INTERNAL_DAG_PLAN_H_
