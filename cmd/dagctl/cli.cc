#include "cmd/dagctl/cli.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cmd/dagctl/args.h"
#include "cmd/dagctl/commands.h"

namespace dagd::dagctl {
namespace {

// A CLI11 check that runs one of the args.h parsers, so a bad value is a usage error.
template <typename Parse>
CLI::Validator Checked(Parse parse) {
  return CLI::Validator(
      [parse](std::string& value) -> std::string {
        const auto parsed = parse(value);
        return parsed.ok() ? std::string() : std::string{parsed.status().message()};
      },
      "");
}

OutputFormat ToOutputFormat(const std::string& name) {
  if (name == "json") {
    return OutputFormat::kJson;
  }
  if (name == "yaml") {
    return OutputFormat::kYaml;
  }
  return OutputFormat::kTable;
}

}  // namespace

int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
         const WatchOptions& watch) {
  const TimePoint now = std::chrono::system_clock::now();
  CLI::App app("dagctl: the command-line client of the dagd workflow engine.", "dagctl");
  app.fallthrough();  // Global options may follow the subcommand.
  app.require_subcommand(1);

  std::string server = "127.0.0.1:7233";
  std::string output = "table";
  std::string timeout = "30s";
  app.add_option("--server", server, "dagd server HOST:PORT")
      ->envname("DAGD_SERVER")
      ->capture_default_str();
  app.add_option("-o,--output", output, "Output format")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str();
  app.add_option("--timeout", timeout, "Deadline of each unary call (e.g. 30s, 2m)")
      ->type_name("DURATION")
      ->check(Checked(ParseDuration))
      ->capture_default_str();
  BundleLimits bundle_limits;
  app.add_option("--max-bundle-bytes", bundle_limits.max_bytes,
                 "Refuse a --bundle DIR with more bytes of files (dagd's --max-bundle-bytes)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-bundle-files", bundle_limits.max_files,
                 "Refuse a --bundle DIR with more files (dagd's --max-bundle-files)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

  // The chosen command; it runs after parsing, once every option has its value.
  std::function<int(Context&)> action;
  const auto on_run = [&action](std::function<int(Context&)> command) {
    return [&action, command = std::move(command)] { action = command; };
  };

  std::vector<std::string> apply_files;
  CLI::App* apply = app.add_subcommand("apply", "Store a workflow (CreateWorkflow)");
  apply->add_option("-f,--file", apply_files, "Workflow YAML file, - for stdin")
      ->required()
      ->allow_extra_args(false);
  std::string apply_bundle_dir;
  apply->add_option("--bundle,--bundle-dir", apply_bundle_dir,
                    "Directory of the playbooks, roles and files the workflow uses; dagd stores "
                    "them with the version (default: no bundle)");
  apply->callback(on_run([&](Context& c) { return Apply(c, apply_files, apply_bundle_dir); }));

  SubmitArgs submit_args;
  std::vector<std::string> submit_parameters;
  CLI::App* submit = app.add_subcommand("submit", "Start a run of a stored workflow or a file");
  CLI::Option* submit_name =
      submit->add_option("workflow", submit_args.workflow, "Stored workflow name");
  submit->add_option("-f,--file", submit_args.file, "Workflow YAML file to run, - for stdin")
      ->excludes(submit_name);
  submit
      ->add_option("--bundle,--bundle-dir", submit_args.bundle_dir,
                   "With -f: directory of the playbooks, roles and files the spec uses, sent "
                   "with it (default: no bundle)")
      ->needs(submit->get_option("--file"));
  submit->add_option("--version", submit_args.version, "Stored workflow version (0: latest)")
      ->check(CLI::NonNegativeNumber);
  submit->add_option("-p,--parameter", submit_parameters, "Workflow parameter")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->check(Checked(ParseParameter));
  submit->add_option("--request-id", submit_args.request_id,
                     "Idempotency key: the same id returns the same run");
  submit->add_flag("-w,--watch", submit_args.watch, "Watch the run until it ends");
  submit->callback(on_run([&](Context& c) {
    if (submit_args.workflow.empty() == submit_args.file.empty()) {
      *c.err << "dagctl: submit needs a workflow NAME or -f FILE\n";
      return kExitUsage;
    }
    submit_args.parameters = *ParseParameters(submit_parameters);
    return Submit(c, submit_args);
  }));

  std::string watch_run;
  int64_t watch_from = 0;
  CLI::App* watch_cmd = app.add_subcommand("watch", "Print a run's events until it ends");
  watch_cmd->add_option("run", watch_run, "Run id")->required();
  watch_cmd
      ->add_option("--from", watch_from,
                   "Only events with a greater sequence number (e.g. a run's last_sequence)")
      ->check(CLI::NonNegativeNumber);
  bool watch_ansible = false;
  watch_cmd->add_flag("--ansible", watch_ansible,
                      "Also print each Ansible host result as it happens");
  watch_cmd->callback(
      on_run([&](Context& c) { return Watch(c, watch_run, watch_from, watch_ansible); }));

  CLI::App* runs = app.add_subcommand("runs", "List and inspect runs");
  runs->require_subcommand(1);
  ListRunsArgs list_args;
  std::vector<std::string> list_phases;
  std::string list_since, list_until;
  CLI::App* runs_list = runs->add_subcommand("list", "List runs, newest first");
  runs_list->add_option("--workflow", list_args.workflow, "Only runs of this workflow");
  runs_list->add_option("--phase", list_phases, "Only runs in this phase (repeatable)")
      ->allow_extra_args(false)
      ->check(Checked(ParsePhase));
  const auto time_bound = [now](absl::string_view text) { return ParseTimeBound(text, now); };
  runs_list->add_option("--since", list_since, "Created at or after: a duration ago or RFC 3339")
      ->check(Checked(time_bound));
  runs_list->add_option("--until", list_until, "Created before: a duration ago or RFC 3339")
      ->check(Checked(time_bound));
  runs_list->add_option("--limit", list_args.limit, "At most this many runs")
      ->check(CLI::NonNegativeNumber);
  runs_list->add_flag("--all", list_args.all, "Follow every page");
  runs_list->callback(on_run([&](Context& c) {
    for (const std::string& phase : list_phases) {
      list_args.phases.push_back(*ParsePhase(phase));
    }
    if (!list_since.empty()) {
      list_args.since = *time_bound(list_since);
    }
    if (!list_until.empty()) {
      list_args.until = *time_bound(list_until);
    }
    return ListRuns(c, list_args);
  }));
  std::string get_run;
  CLI::App* runs_get = runs->add_subcommand("get", "Show a run and its node tree");
  runs_get->add_option("run", get_run, "Run id")->required();
  runs_get->callback(on_run([&](Context& c) { return GetRun(c, get_run); }));

  LogsArgs logs_args;
  CLI::App* logs = app.add_subcommand("logs", "Print a node's logs");
  logs->add_option("run", logs_args.run_id, "Run id")->required();
  logs->add_option("node", logs_args.node, "Node name or display name")->required();
  logs->add_flag("-f,--follow", logs_args.follow, "Keep streaming until the node ends");
  logs->add_option("--attempt", logs_args.attempt, "Only this attempt (0: all)")
      ->check(CLI::NonNegativeNumber);
  logs->add_flag("--prefix", logs_args.prefix, "Start each line with NODE#ATTEMPT:");
  logs->callback(on_run([&](Context& c) { return Logs(c, logs_args); }));

  EventsArgs events_args;
  CLI::App* events = app.add_subcommand("events", "Print a run's Ansible events");
  events->add_option("run", events_args.run_id, "Run id")->required();
  events->add_option("node", events_args.node, "Only this node (name or display name)");
  events->add_option("--host", events_args.host, "Only results for this host");
  events->add_flag("--changed", events_args.changed_only, "Only results that changed a host");
  events->add_flag("--failed", events_args.failed_only,
                   "Only failed results (ignored failures and unreachable hosts included)");
  events->add_flag("-f,--follow", events_args.follow, "Keep streaming until the run ends");
  events->callback(on_run([&](Context& c) { return Events(c, events_args); }));

  std::string end_run, end_message;
  for (const bool terminate : {false, true}) {
    CLI::App* end = app.add_subcommand(
        terminate ? "terminate" : "stop",
        terminate ? "End a run now, without exit handlers" : "End a run; exit handlers run");
    end->add_option("run", end_run, "Run id")->required();
    end->add_option("--message", end_message, "Recorded with the change");
    end->callback(
        on_run([&, terminate](Context& c) { return EndRun(c, end_run, end_message, terminate); }));
  }

  std::vector<std::string> lint_files;
  CLI::App* lint = app.add_subcommand("lint", "Check workflow files (LintWorkflow)");
  lint->add_option("files", lint_files, "Workflow YAML files")->required();
  lint->callback(on_run([&](Context& c) { return Lint(c, lint_files); }));

  ExportArgs export_args;
  std::vector<std::string> export_parameters;
  CLI::App* export_cmd =
      app.add_subcommand("export", "Print a workflow or a run in another engine's format");
  export_cmd->require_subcommand(1);
  CLI::App* export_argo = export_cmd->add_subcommand(
      "argo", "One Argo Workflow: the YAML as written, ansible templates as containers");
  export_argo->add_option("source", export_args.source, "Run id, or workflow YAML file (- stdin)")
      ->required();
  export_argo->add_option("--bundle,--bundle-dir", export_args.bundle_dir,
                          "For a FILE: directory of the playbooks and files it uses");
  export_argo->add_option("-p,--parameter", export_parameters, "For a FILE: workflow parameter")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->check(Checked(ParseParameter));
  export_argo->callback(on_run([&](Context& c) {
    export_args.parameters = *ParseParameters(export_parameters);
    return ExportArgo(c, export_args);
  }));

  CLI::App* workflows = app.add_subcommand("workflows", "Manage stored workflows");
  workflows->require_subcommand(1);
  workflows->add_subcommand("list", "List stored workflows (latest versions)")
      ->callback(on_run([](Context& c) { return ListWorkflows(c); }));
  std::string workflow_name;
  int64_t workflow_version = 0;
  CLI::App* workflows_get = workflows->add_subcommand("get", "Show a stored workflow");
  workflows_get->add_option("name", workflow_name, "Workflow name")->required();
  workflows_get->add_option("--version", workflow_version, "Version (0: latest)")
      ->check(CLI::NonNegativeNumber);
  workflows_get->callback(
      on_run([&](Context& c) { return GetWorkflow(c, workflow_name, workflow_version); }));
  CLI::App* workflows_delete = workflows->add_subcommand("delete", "Delete a stored workflow");
  workflows_delete->add_option("name", workflow_name, "Workflow name")->required();
  workflows_delete->callback(on_run([&](Context& c) { return DeleteWorkflow(c, workflow_name); }));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
  }

  ClientOptions client_options;
  client_options.server = server;
  client_options.timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(*ParseDuration(timeout));
  Client client(client_options);
  Context context{&client, ToOutputFormat(output), &out, &err, watch, bundle_limits};
  return action(context);
}

}  // namespace dagd::dagctl
