#include "runners/builtin.h"

#include <memory>

#include "engine/status_macros.h"
#include "runners/kubernetes/client/cluster_config.h"
#include "runners/kubernetes/client/kube_client.h"
#include "runners/kubernetes/kubernetes_runner.h"
#include "runners/local/local_runner.h"

namespace dagd::runners {
namespace {

absl::Status RegisterKubernetes(RunnerRegistry* registry, const BuiltinRunnerOptions& options) {
  const KubernetesRunnerSettings& k8s = options.kubernetes;
  if (!k8s.in_cluster && k8s.kubeconfig.empty()) return absl::OkStatus();
  absl::StatusOr<kubernetes::ClusterConfig> config =
      k8s.in_cluster ? kubernetes::LoadInClusterConfig()
                     : kubernetes::LoadKubeconfig(k8s.kubeconfig, k8s.context);
  if (!config.ok()) return config.status();
  kubernetes::KubernetesRunnerOptions runner_options;
  runner_options.job.namespace_name = !k8s.namespace_name.empty() ? k8s.namespace_name
                                      : !config->default_namespace.empty()
                                          ? config->default_namespace
                                          : "default";
  if (!k8s.ansible_image.empty()) runner_options.job.ansible_image = k8s.ansible_image;
  ASSIGN_OR_RETURN(std::unique_ptr<kubernetes::KubeClient> client,
                   kubernetes::KubeClient::Create(*std::move(config)));
  return registry->Register("kubernetes",
                            std::make_unique<kubernetes::KubernetesRunner>(
                                *options.io_context, std::move(client), std::move(runner_options)));
}

}  // namespace

absl::Status RegisterBuiltinRunners(RunnerRegistry* registry, const BuiltinRunnerOptions& options) {
  if (options.io_context == nullptr) {
    return absl::InvalidArgumentError("RegisterBuiltinRunners needs the scheduler's io_context");
  }
  RETURN_IF_ERROR(registry->Register(
      "local", std::make_unique<local::LocalRunner>(*options.io_context, options.local)));
  return RegisterKubernetes(registry, options);
}

}  // namespace dagd::runners
