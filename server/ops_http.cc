#include "server/ops_http.h"

namespace dagd::server {

void AddOpsRoutes(const OpsOptions& options, HttpServer::Routes* routes) {
  metrics::Registry* registry = options.registry;
  auto not_ready_reason = options.not_ready_reason;
  metrics::Gauge* ready =
      &registry->AddGauge("dagd_ready", "1 when dagd is ready to serve (its /readyz answers 200).")
           ->Get();
  registry->OnCollect(
      [ready, not_ready_reason] { ready->Set(not_ready_reason().empty() ? 1 : 0); });

  (*routes)["/metrics"] = [registry](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = registry->Render();
    return r;
  };
  (*routes)["/healthz"] = [](const HttpRequest&) {
    HttpResponse r;
    r.body = "ok\n";
    return r;
  };
  (*routes)["/readyz"] = [not_ready_reason](const HttpRequest&) {
    HttpResponse r;
    const std::string reason = not_ready_reason();
    if (reason.empty()) {
      r.body = "ready\n";
    } else {
      r.status = 503;
      r.body = "not ready: " + reason + "\n";
    }
    return r;
  };
}

}  // namespace dagd::server
