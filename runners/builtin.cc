#include "runners/builtin.h"

#include <memory>

#include "engine/status_macros.h"
#include "runners/argo/argo_runner.h"
#include "runners/kubernetes/client/cluster_config.h"
#include "runners/kubernetes/client/kube_client.h"
#include "runners/kubernetes/kubernetes_runner.h"
#include "runners/local/local_runner.h"

namespace dagd::runners {
namespace {

bool NamesACluster(const KubernetesRunnerSettings& k8s) {
  return k8s.in_cluster || !k8s.kubeconfig.empty();
}

absl::StatusOr<kubernetes::ClusterConfig> LoadClusterConfig(const KubernetesRunnerSettings& k8s) {
  return k8s.in_cluster ? kubernetes::LoadInClusterConfig()
                        : kubernetes::LoadKubeconfig(k8s.kubeconfig, k8s.context);
}

absl::Status RegisterKubernetes(RunnerRegistry* registry, const BuiltinRunnerOptions& options) {
  const KubernetesRunnerSettings& k8s = options.kubernetes;
  if (!NamesACluster(k8s)) return absl::OkStatus();
  absl::StatusOr<kubernetes::ClusterConfig> config = LoadClusterConfig(k8s);
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

absl::Status RegisterArgo(RunnerRegistry* registry, const BuiltinRunnerOptions& options) {
  const ArgoRunnerSettings& argo = options.argo;
  if (argo.server.empty() && !argo.on_kubernetes) return absl::OkStatus();
  argo::ArgoRunnerOptions runner_options;
  kubernetes::ClusterConfig config;
  if (argo.on_kubernetes) {
    if (!argo.server.empty()) {
      return absl::InvalidArgumentError(
          "the argo runner submits either to an Argo Server or through the Kubernetes API, not "
          "both: drop --argo-server or --argo-on-kubernetes");
    }
    if (!NamesACluster(options.kubernetes)) {
      return absl::InvalidArgumentError(
          "--argo-on-kubernetes needs a cluster: add --kubeconfig FILE or --kube-in-cluster");
    }
    ASSIGN_OR_RETURN(config, LoadClusterConfig(options.kubernetes));
    runner_options.api = argo::ArgoApi::kKubernetes;
  } else {
    config.server = argo.server;
    config.token_file = argo.token_file;
    config.ca_file = argo.ca_file;
    config.insecure_skip_tls_verify = argo.insecure_skip_tls_verify;
    config.source = "--argo-server " + argo.server;
    runner_options.api = argo::ArgoApi::kArgoServer;
  }
  runner_options.workflow.namespace_name =
      argo.namespace_name.empty() ? "argo" : argo.namespace_name;
  if (!options.kubernetes.ansible_image.empty()) {
    runner_options.workflow.ansible_image = options.kubernetes.ansible_image;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<kubernetes::KubeClient> client,
                   kubernetes::KubeClient::Create(std::move(config)));
  return registry->Register(
      "argo", std::make_unique<argo::ArgoRunner>(*options.io_context, std::move(client),
                                                 std::move(runner_options)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<kubernetes::KubeClient>> NewClusterClient(
    const KubernetesRunnerSettings& settings) {
  if (!NamesACluster(settings)) {
    return absl::FailedPreconditionError("no cluster: set --kubeconfig FILE or --kube-in-cluster");
  }
  ASSIGN_OR_RETURN(kubernetes::ClusterConfig config, LoadClusterConfig(settings));
  return kubernetes::KubeClient::Create(std::move(config));
}

absl::Status RegisterBuiltinRunners(RunnerRegistry* registry, const BuiltinRunnerOptions& options) {
  if (options.io_context == nullptr) {
    return absl::InvalidArgumentError("RegisterBuiltinRunners needs the scheduler's io_context");
  }
  RETURN_IF_ERROR(registry->Register(
      "local", std::make_unique<local::LocalRunner>(*options.io_context, options.local)));
  RETURN_IF_ERROR(RegisterKubernetes(registry, options));
  return RegisterArgo(registry, options);
}

}  // namespace dagd::runners
