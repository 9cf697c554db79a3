// RegisterBuiltinRunners(): fills a RunnerRegistry with the runners dagd ships, explicitly, at
// start-up (cmd/dagd calls it once; see CONVENTIONS.md on why there is no self-registration).
//
// This is where Boost types meet the runners: runner.h stays free of them.
#ifndef DAGD_RUNNERS_BUILTIN_H_
#define DAGD_RUNNERS_BUILTIN_H_

#include <boost/asio/io_context.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runners/local/options.h"
#include "runners/runner.h"

namespace dagd::runners {
namespace kubernetes {
class KubeClient;
}

// Where the kubernetes runner finds its cluster. Neither `in_cluster` nor `kubeconfig`: no
// kubernetes runner (templates that name it fail with "unknown runner").
struct KubernetesRunnerSettings {
  bool in_cluster = false;     // the pod's service account (LoadInClusterConfig)
  std::string kubeconfig;      // or a kubeconfig file
  std::string context;         // its context; empty: current-context
  std::string namespace_name;  // empty: the context's (or the pod's) namespace, else "default"
  std::string ansible_image;   // empty: JobSpecOptions' default
};

// Where the argo runner submits its Workflows: an Argo Server (`server`), or, with
// `on_kubernetes`, the Workflow resource on the cluster of KubernetesRunnerSettings. Neither: no
// argo runner.
struct ArgoRunnerSettings {
  std::string server;      // the Argo Server's base URL, "https://argo.example:2746"
  std::string token_file;  // its bearer token, re-read every minute; empty: none
  std::string ca_file;     // the CA of its certificate; empty: the system's bundle
  bool insecure_skip_tls_verify = false;
  bool on_kubernetes = false;  // submit through the Kubernetes API instead
  std::string namespace_name;  // empty: "argo"
};

struct BuiltinRunnerOptions {
  // The scheduler's event loop: every runner delivers its callbacks on it. Required; must
  // outlive the registry.
  boost::asio::io_context* io_context = nullptr;
  local::LocalRunnerOptions local;
  KubernetesRunnerSettings kubernetes;
  ArgoRunnerSettings argo;  // its ansible image is kubernetes.ansible_image
};

// Registers "local"; "kubernetes" when options.kubernetes names a cluster (its configuration is
// loaded and checked now: an unreadable kubeconfig or a missing context is an error naming the
// file); "argo" when options.argo names an Argo Server or asks for the Kubernetes API (which then
// needs options.kubernetes' cluster; both at once is InvalidArgument). InvalidArgument if
// options.io_context is null; AlreadyExists if a name is taken.
absl::Status RegisterBuiltinRunners(RunnerRegistry* registry, const BuiltinRunnerOptions& options);

// A client of the cluster `settings` names (the kubernetes runner's), for other uses of the
// Kubernetes API (TokenReview). FailedPrecondition when it names none; the loaders' errors
// otherwise.
absl::StatusOr<std::unique_ptr<kubernetes::KubeClient>> NewClusterClient(
    const KubernetesRunnerSettings& settings);

}  // namespace dagd::runners

#endif  // DAGD_RUNNERS_BUILTIN_H_
