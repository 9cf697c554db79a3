// The read-only run pages on the operations port, for people who would rather look than read:
//
//   /                           the newest runs, each linking to its page
//   /runs/RUN                   the run's DAG (SVG drawn in the browser), each task filled with
//                               its phase, progress (done/total nodes) and elapsed time, and per
//                               node its attempts and links to its logs and Ansible events;
//                               refreshed every second until the run is final
//   /runs/RUN/logs?node=NODE    a node's log, every attempt, as text
//   /runs/RUN/events[?node=NODE] the run's Ansible events as a table
//   /api/runs/RUN               what the page draws, as JSON (RunPageJson)
//
// Handlers run on the io_context thread (HttpServer) and make short reads from the store.
// Nothing here changes anything.
#ifndef DAGD_SERVER_WEB_UI_H_
#define DAGD_SERVER_WEB_UI_H_

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "server/http_server.h"
#include "storage/store.h"

namespace dagd::server {

// Adds the routes above. `store` is not owned and must outlive the routes.
void AddWebUiRoutes(storage::Store* store, HttpServer::Routes* routes);

// The run as the page draws it:
//   {id, workflow, phase, message, created_ms, started_ms, finished_ms, now_ms, final,
//    done, total,                       // pod nodes final / all pod nodes
//    tasks: [{task, template, nested_dag, phase, nodes: [{name, display, phase, message,
//             attempts: [{number, phase, runner, message, started_ms, finished_ms}]}]}],
//    edges: [[from, to], …]}            // indexes into tasks
// A task's nodes are the pods it ran: itself, a fan-out's children, or a nested DAG's pods.
// `workflow` is the stored workflow's name, or an inline spec's generateName without its '-'.
// NotFound for an unknown run.
absl::StatusOr<nlohmann::json> RunPageJson(storage::Store* store, const std::string& run_id,
                                           int64_t now_ms);

}  // namespace dagd::server

#endif  // DAGD_SERVER_WEB_UI_H_
