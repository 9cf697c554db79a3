#include "runners/local/command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/status_macros.h"
#include "runners/local/ansible_events.h"
#include "runners/local/ansible_output.h"
#include "runners/local/credentials.h"
#include "runners/local/files.h"
#include "runners/local/inventory.h"

namespace dagd::runners::local {
namespace {

namespace fs = std::filesystem;

using Environment = std::map<std::string, std::string>;

// Names the template in error messages.
std::string Where(const engine::Template& t) {
  std::string where = absl::StrCat("template \"", t.name, "\"");
  if (t.location.line > 0) absl::StrAppend(&where, " (", t.location.ToString(), ")");
  return where;
}

// dagd's own files in a working directory; bundles may not use this name.
constexpr char kDagdDir[] = ".dagd";

// Where a script's source is in its pod, as Argo's executor puts it.
constexpr char kPodScriptPath[] = "/argo/staging/script";

// An input parameter as an extra var: JSON objects and lists (a set_stats output, a fan-in) as
// their structure, everything else as the string it is.
nlohmann::json ExtraVarValue(const std::string& value) {
  const size_t first = value.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (value[first] == '{' || value[first] == '[')) {
    nlohmann::json parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object() || parsed.is_array()) return parsed;
  }
  return value;
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Environment ParseEnvironment(const std::vector<std::string>& entries) {
  Environment env;
  for (const std::string& entry : entries) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

void ApplyTemplateEnv(const std::vector<engine::EnvVar>& vars, Environment* env) {
  for (const engine::EnvVar& var : vars) (*env)[var.name] = var.value;
}

// Resolves argv[0] on the attempt's PATH and fills the rest of `command`.
absl::Status Finish(const engine::Template& t, const Environment& env, Command* command) {
  auto path_it = env.find("PATH");
  const std::string path_env =
      path_it == env.end() ? "/usr/local/bin:/usr/bin:/bin" : path_it->second;
  absl::StatusOr<std::string> program = FindProgram(command->argv[0], path_env, command->work_dir);
  if (!program.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(Where(t), ": ", program.status().message(),
                     "; install it on the dagd host or run the template on another runner"));
  }
  command->program = *std::move(program);
  for (const auto& [name, value] : env) command->env.push_back(absl::StrCat(name, "=", value));
  return absl::OkStatus();
}

absl::Status BuildContainer(const engine::Template& t, const LocalRunnerOptions& options,
                            Command* command) {
  const engine::ContainerSpec& c = *t.container;
  auto own_program = options.image_programs.find(c.image);
  auto stand_in = options.image_entrypoints.find(c.image);
  if (!c.command.empty() && own_program != options.image_programs.end() &&
      stand_in != options.image_entrypoints.end() && c.command.front() == own_program->second) {
    // The image's own program, which only exists inside the image: its stand-in runs instead.
    command->argv = stand_in->second;
    command->argv.insert(command->argv.end(), c.command.begin() + 1, c.command.end());
  } else if (!c.command.empty()) {
    command->argv = c.command;
  } else {
    auto it = options.image_entrypoints.find(c.image);
    if (it == options.image_entrypoints.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(t),
          ": container has no `command` and the local runner has no entrypoint for image \"",
          c.image,
          "\"; write the command out (e.g. command: [sh, -c]) or add the image to the local "
          "runner's image_entrypoints"));
    }
    command->argv = it->second;
  }
  command->argv.insert(command->argv.end(), c.args.begin(), c.args.end());
  return absl::OkStatus();
}

absl::Status BuildScript(const engine::Template& t, Command* command) {
  const engine::ScriptSpec& s = *t.script;
  if (s.container.command.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(t),
                     ": script has no `command`; name its interpreter, e.g. "
                     "command: [python3], [bash] or [sh]"));
  }
  std::string script_path = (fs::path(command->work_dir) / kDagdDir / "script").string();
  if (command->pod.has_value()) {
    script_path = kPodScriptPath;
    ASSIGN_OR_RETURN(const std::string staged, command->pod->StagingPath(script_path));
    RETURN_IF_ERROR(WriteFile(staged, s.source, 0755));
  } else {
    RETURN_IF_ERROR(WriteFile(script_path, s.source, 0755));
  }
  command->argv = s.container.command;
  // Argo's python images call it `python`; on a host that is python3.
  if (command->argv[0] == "python") command->argv[0] = "python3";
  command->argv.insert(command->argv.end(), s.container.args.begin(), s.container.args.end());
  command->argv.push_back(script_path);
  return absl::OkStatus();
}

// The container's volumeMounts of hostPath volumes (the template's `volumes`, then the
// workflow's), bind-mounted into its pod; other volume types need nothing on the local runner
// (the pod's own filesystem is writable).
absl::Status MountHostPaths(const engine::Template& t, const engine::ContainerSpec& c,
                            const nlohmann::json& workflow_kubernetes, PodFilesystem* pod) {
  const nlohmann::json* mounts = c.kubernetes.is_object() && c.kubernetes.contains("volumeMounts")
                                     ? &c.kubernetes["volumeMounts"]
                                     : nullptr;
  if (mounts == nullptr || !mounts->is_array()) return absl::OkStatus();
  auto find_volume = [](const nlohmann::json& holder,
                        const std::string& name) -> const nlohmann::json* {
    if (!holder.is_object() || !holder.contains("volumes") || !holder["volumes"].is_array()) {
      return nullptr;
    }
    for (const nlohmann::json& volume : holder["volumes"]) {
      if (volume.is_object() && volume.value("name", "") == name) return &volume;
    }
    return nullptr;
  };
  for (const nlohmann::json& mount : *mounts) {
    if (!mount.is_object()) continue;
    const std::string name = mount.value("name", "");
    const nlohmann::json* volume = find_volume(t.kubernetes, name);
    if (volume == nullptr) volume = find_volume(workflow_kubernetes, name);
    if (volume == nullptr || !volume->contains("hostPath")) continue;
    std::string host_path = (*volume)["hostPath"].value("path", "");
    const std::string sub_path = mount.value("subPath", "");
    if (!sub_path.empty()) host_path = (fs::path(host_path) / sub_path).string();
    absl::Status added =
        pod->AddHostMount(host_path, mount.value("mountPath", ""), mount.value("readOnly", false));
    if (!added.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(t), ": volume \"", name, "\": ", added.message()));
    }
  }
  return absl::OkStatus();
}

// A path from the template: absolute as given, otherwise inside the bundle.
absl::StatusOr<std::string> BundlePath(const engine::Template& t, const std::string& what,
                                       const std::string& path, const std::string& bundle_dir) {
  if (fs::path(path).is_absolute()) return path;
  if (bundle_dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(t), ": ", what, " \"", path,
                     "\" is relative but the workflow has no bundle directory; submit the "
                     "workflow with its bundle or give an absolute path"));
  }
  return (fs::path(bundle_dir) / path).string();
}

absl::Status BuildAnsible(const AttemptSpec& spec, const LocalRunnerOptions& options,
                          Environment* env, Command* command) {
  const engine::Template& t = spec.resolved;
  const engine::AnsibleSpec& a = *t.ansible;
  const fs::path work_dir(spec.work_dir);

  std::string playbook;
  if (!a.source.empty() && !a.playbook.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(t), ": ansible sets both `playbook` and `source`; keep one"));
  }
  if (!a.source.empty()) {
    // Beside the bundle's files, so that its roles/ and group_vars/ apply to an inline playbook.
    playbook = (work_dir / ".dagd-playbook.yml").string();
    RETURN_IF_ERROR(WriteFile(playbook, a.source, 0600));
  } else if (!a.playbook.empty()) {
    ASSIGN_OR_RETURN(playbook, BundlePath(t, "playbook", a.playbook, spec.bundle_dir));
    if (!IsRegularFile(playbook)) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(t), ": playbook \"", a.playbook, "\" not found (looked for ", playbook,
                       "); add it to the workflow's bundle or fix the path"));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(t), ": ansible needs `playbook` (a file in the bundle) or `source` (inline)"));
  }

  command->argv = {options.ansible_playbook};
  if (!a.inventory.empty()) {
    ASSIGN_OR_RETURN(std::string inventory,
                     PrepareInventory(a.inventory, spec.work_dir, spec.bundle_dir, Where(t)));
    command->argv.insert(command->argv.end(), {"-i", inventory});
  }
  // Input parameters (which carry upstream outputs) and then extraVars, which win on a clash.
  nlohmann::json vars = nlohmann::json::object();
  for (const auto& [name, value] : spec.inputs) vars[name] = ExtraVarValue(value);
  for (const auto& [name, value] : a.extra_vars) vars[name] = value;
  if (!vars.empty()) {
    std::string vars_path = (work_dir / kDagdDir / "extra-vars.json").string();
    RETURN_IF_ERROR(WriteFile(vars_path, vars.dump(), 0600));
    command->argv.insert(command->argv.end(), {"-e", absl::StrCat("@", vars_path)});
  }
  if (!a.limit.empty()) command->argv.insert(command->argv.end(), {"--limit", a.limit});
  if (a.check) command->argv.push_back("--check");
  if (a.diff) command->argv.push_back("--diff");
  // Entries may be comma lists themselves ("a, b" or a substituted parameter); one flag each.
  auto tag_list = [](const std::vector<std::string>& entries) {
    std::vector<std::string> tags;
    for (const std::string& entry : entries) {
      for (absl::string_view tag : absl::StrSplit(entry, ',', absl::SkipWhitespace())) {
        tags.emplace_back(absl::StripAsciiWhitespace(tag));
      }
    }
    return absl::StrJoin(tags, ",");
  };
  if (std::string tags = tag_list(a.tags); !tags.empty()) {
    command->argv.insert(command->argv.end(), {"--tags", tags});
  }
  if (std::string tags = tag_list(a.skip_tags); !tags.empty()) {
    command->argv.insert(command->argv.end(), {"--skip-tags", tags});
  }
  if (a.forks.has_value()) {
    command->argv.insert(command->argv.end(), {"--forks", absl::StrCat(*a.forks)});
  }
  if (a.verbosity > 0) command->argv.push_back("-" + std::string(a.verbosity, 'v'));
  if (a.become) command->argv.push_back("--become");
  if (!a.become_user.empty()) {
    command->argv.insert(command->argv.end(), {"--become-user", a.become_user});
  }
  command->argv.push_back(playbook);

  // Without a terminal Ansible answers a prompt with nothing and runs on; refuse up front.
  std::string playbook_text = a.source;
  if (playbook_text.empty()) {
    std::ifstream in(playbook);
    playbook_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::set<std::string> answered;
  for (const auto& [name, value] : vars.items()) answered.insert(name);
  if (std::string prompt =
          UnansweredPrompt(playbook_text, fs::path(playbook).parent_path().string(), answered);
      !prompt.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(t), ": the playbook would prompt for \"", prompt,
        "\" (vars_prompt without a default), but dagd runs it without a terminal, where Ansible "
        "only warns \"Not prompting as we are not in interactive mode\" and goes on with an "
        "empty value; give the prompt a default or set \"",
        prompt, "\" in extraVars or pass it as an input parameter"));
  }

  (*env)["ANSIBLE_NOCOLOR"] = "1";
  // On a host with cowsay installed Ansible draws every task header as a cow, and the task
  // names dagd reads from the log (failure messages, recaps) are lost.
  (*env)["ANSIBLE_NOCOWS"] = "1";
  (*env)["ANSIBLE_RETRY_FILES_ENABLED"] = "0";
  (*env)["ANSIBLE_LOCAL_TEMP"] = (work_dir / ".ansible-tmp").string();
  (*env)["ANSIBLE_HOST_KEY_CHECKING"] = a.host_key_checking ? "True" : "False";
  // An inventory Ansible cannot parse is an error, not a warning and a run on no hosts.
  (*env)["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "True";
  (*env)["PYTHONUNBUFFERED"] = "1";
  env->erase("ANSIBLE_FORCE_COLOR");
  command->is_ansible = true;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> FindProgram(const std::string& name, const std::string& path_env,
                                        const std::string& work_dir) {
  if (name.empty()) return absl::NotFoundError("the command is empty");
  if (name.find('/') != std::string::npos) {
    std::string path = fs::path(name).is_absolute() ? name : (fs::path(work_dir) / name).string();
    if (IsExecutableFile(path)) return path;
    return absl::NotFoundError(absl::StrCat("program \"", name, "\" is not an executable file"));
  }
  for (absl::string_view dir : absl::StrSplit(path_env, ':')) {
    fs::path base = dir.empty() ? fs::path(work_dir) : fs::path(std::string(dir));
    if (base.is_relative()) base = fs::path(work_dir) / base;
    std::string candidate = (base / name).string();
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(
      absl::StrCat("program \"", name, "\" not found on PATH (", path_env, ")"));
}

absl::StatusOr<Command> BuildPodAnsibleCommand(const AttemptSpec& spec,
                                               const LocalRunnerOptions& options,
                                               const std::string& events_prefix) {
  const engine::Template& t = spec.resolved;
  if (t.type != engine::TemplateType::kAnsible || !t.ansible.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(t), ": not an ansible template"));
  }
  const engine::AnsibleSpec& a = *t.ansible;
  if (!a.vault_password_ref.empty() || !a.private_key_ref.empty() ||
      !a.become_password_ref.empty() || !a.env_from_refs.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        Where(t),
        ": credentials (vaultPasswordRef, privateKeyRef, becomePasswordRef, envFromRef) are only "
        "supported by the local runner so far; run this template with `runner: local`"));
  }
  Command command;
  command.work_dir = spec.work_dir;
  std::error_code mkdir_error;
  fs::create_directories(fs::path(spec.work_dir) / kDagdDir, mkdir_error);
  if (mkdir_error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", spec.work_dir, "/", kDagdDir, ": ", mkdir_error.message()));
  }
  Environment env;
  RETURN_IF_ERROR(BuildAnsible(spec, options, &env, &command));
  ApplyTemplateEnv(a.env, &env);
  RETURN_IF_ERROR(EnableEventsPlugin(spec.work_dir, /*events_fd=*/2, &env));
  env["DAGD_EVENTS_PREFIX"] = events_prefix;
  env["PWD"] = spec.work_dir;
  command.events_channel = false;  // the events come back in the container's log
  for (const auto& [name, value] : env) command.env.push_back(absl::StrCat(name, "=", value));
  return command;
}

absl::StatusOr<Command> BuildCommand(const AttemptSpec& spec, const LocalRunnerOptions& options,
                                     const std::vector<std::string>& base_env) {
  const engine::Template& t = spec.resolved;
  Command command;
  command.work_dir = spec.work_dir;
  std::error_code mkdir_error;
  fs::create_directories(fs::path(spec.work_dir) / kDagdDir, mkdir_error);
  if (mkdir_error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", spec.work_dir, "/", kDagdDir, ": ", mkdir_error.message()));
  }
  Environment env = ParseEnvironment(base_env);
  const bool runs_in_pod =
      t.type == engine::TemplateType::kContainer || t.type == engine::TemplateType::kScript;
  if (runs_in_pod && options.pod_filesystem == PodFilesystemMode::kOverlay) {
    command.pod.emplace(spec.work_dir);
    RETURN_IF_ERROR(command.pod->Create());
    const engine::ContainerSpec* c = t.container.has_value() ? &*t.container
                                     : t.script.has_value()  ? &t.script->container
                                                             : nullptr;
    // A pod starts in its image's working directory: "/" for the images Argo's examples use.
    command.work_dir = c != nullptr && !c->working_dir.empty() ? c->working_dir : "/";
    if (command.work_dir[0] != '/') command.work_dir = "/" + command.work_dir;
    if (c != nullptr) {
      RETURN_IF_ERROR(MountHostPaths(t, *c, spec.workflow_kubernetes, &*command.pod));
    }
  }
  switch (t.type) {
    case engine::TemplateType::kContainer:
      if (!t.container.has_value()) break;
      RETURN_IF_ERROR(BuildContainer(t, options, &command));
      ApplyTemplateEnv(t.container->env, &env);
      break;
    case engine::TemplateType::kScript:
      if (!t.script.has_value()) break;
      RETURN_IF_ERROR(BuildScript(t, &command));
      ApplyTemplateEnv(t.script->container.env, &env);
      break;
    case engine::TemplateType::kAnsible:
      if (!t.ansible.has_value()) break;
      RETURN_IF_ERROR(BuildAnsible(spec, options, &env, &command));
      ApplyTemplateEnv(t.ansible->env, &env);
      // After the template's env, so that a credential's value wins over a placeholder there.
      RETURN_IF_ERROR(ApplyCredentials(spec, options.credentials_dir, Where(t), &env, &command));
      // After the template's env, so that callbacks it enables are kept alongside dagd's.
      RETURN_IF_ERROR(EnableEventsPlugin(spec.work_dir, kSpawnEventsFd, &env));
      command.events_channel = true;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(Where(t), ": a ", engine::TemplateTypeName(t.type),
                       " template is not run by a runner; only container, script and ansible "
                       "templates are"));
  }
  if (command.argv.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(t), ": the ", engine::TemplateTypeName(t.type), " template has no body"));
  }
  env["PWD"] = command.work_dir;
  RETURN_IF_ERROR(Finish(t, env, &command));
  return command;
}

}  // namespace dagd::runners::local
