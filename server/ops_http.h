// The operations port's fixed pages: /metrics (Prometheus text format), /healthz (liveness) and
// /readyz (readiness), as HttpServer routes. The run pages (web_ui.h) are added beside them.
#ifndef DAGD_SERVER_OPS_HTTP_H_
#define DAGD_SERVER_OPS_HTTP_H_

#include <functional>
#include <string>

#include "metrics/registry.h"
#include "server/http_server.h"

namespace dagd::server {

struct OpsOptions {
  metrics::Registry* registry = nullptr;  // not owned; must outlive the routes
  // Why dagd is not ready, or "" when it is (database open and migrated, runners configured,
  // the last commit succeeded). Called on the io_context thread at every /readyz and scrape.
  std::function<std::string()> not_ready_reason;
};

// Adds /metrics, /healthz and /readyz to `routes`, and declares dagd_ready in the registry
// (1 when /readyz would answer 200).
void AddOpsRoutes(const OpsOptions& options, HttpServer::Routes* routes);

}  // namespace dagd::server

#endif  // DAGD_SERVER_OPS_HTTP_H_
