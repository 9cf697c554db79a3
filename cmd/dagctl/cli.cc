#include "cmd/dagctl/cli.h"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "cmd/dagctl/args.h"
#include "cmd/dagctl/commands.h"
#include "cmd/dagctl/completion.h"
#include "cmd/dagctl/connection.h"

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
  if (name == "wide") {
    return OutputFormat::kWide;
  }
  if (name == "json") {
    return OutputFormat::kJson;
  }
  if (name == "yaml") {
    return OutputFormat::kYaml;
  }
  return OutputFormat::kTable;
}

// The footer of a command's --help: "Examples:" and one indented line per example.
std::string Examples(std::initializer_list<const char*> lines) {
  std::string out = "Examples:";
  for (const char* line : lines) absl::StrAppend(&out, "\n  ", line);
  return out;
}

// Colors: --color always / never, or on a terminal without NO_COLOR (https://no-color.org).
bool UseColor(const std::string& mode, bool terminal) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  const char* no_color = std::getenv("NO_COLOR");
  return terminal && (no_color == nullptr || no_color[0] == '\0');
}

}  // namespace

int Main(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
         const WatchOptions& watch) {
  const TimePoint now = std::chrono::system_clock::now();
  CLI::App app("dagctl: the command-line client of the dagd workflow engine.", "dagctl");
  app.fallthrough();  // Global options may follow the subcommand.
  app.require_subcommand(1);
  app.footer(
      Examples({"dagctl submit -f diamond.yaml --bundle playbooks/ --watch",
                "dagctl runs list --phase Failed --since 2h -l team=web",
                "dagctl runs get diamond-x7k2p -o yaml",
                "dagctl graph diamond.yaml --png diamond.png", "source <(dagctl completion bash)",
                "Exit status: 0 success, 1 failure (RPC error, run not Succeeded, lint "
                "findings), 2 usage error. The server is --server or DAGD_SERVER."}));

  std::string output = "table";
  std::string timeout = "30s";
  ConnectionSettings connection{.server = "127.0.0.1:7233"};
  std::string config_file = DefaultConfigPath();
  CLI::Option* config_option =
      app.add_option("--config", config_file,
                     "dagctl's config file (YAML: server, ca-file, cert-file, key-file, "
                     "token-file, tls-server-name, tls, namespace); flags and environment "
                     "variables win over it")
          ->envname("DAGCTL_CONFIG")
          ->capture_default_str();
  // The connection settings, by config-file key.
  std::map<std::string, CLI::Option*> connection_options = {
      {"server", app.add_option("--server", connection.server, "dagd server HOST:PORT")
                     ->envname("DAGD_SERVER")
                     ->capture_default_str()},
      {"tls", app.add_flag("--tls", connection.tls,
                           "Connect over TLS, verifying dagd's certificate against the system's "
                           "CAs (implied by --ca-file and --cert-file)")
                  ->envname("DAGD_TLS")},
      {"ca-file", app.add_option("--ca-file", connection.ca_file,
                                 "Connect over TLS, verifying dagd's certificate against this CA "
                                 "(PEM)")
                      ->envname("DAGD_CA_FILE")},
      {"cert-file", app.add_option("--cert-file", connection.cert_file,
                                   "Client certificate for mutual TLS (PEM)")
                        ->envname("DAGD_CERT_FILE")},
      {"key-file", app.add_option("--key-file", connection.key_file, "The key of --cert-file (PEM)")
                       ->envname("DAGD_KEY_FILE")},
      {"tls-server-name",
       app.add_option("--tls-server-name", connection.tls_server_name,
                      "The name dagd's certificate must carry (default: the host of --server)")
           ->envname("DAGD_TLS_SERVER_NAME")},
      {"token-file", app.add_option("--token-file", connection.token_file,
                                    "Bearer token to authenticate with, read from this file")
                         ->envname("DAGD_TOKEN_FILE")},
  };
  std::string namespace_name;
  connection_options["namespace"] =
      app.add_option("-n,--namespace", namespace_name,
                     "Namespace of what apply and submit store, and the only one lists show "
                     "(default: the YAML's metadata.namespace, else default; lists: every "
                     "namespace you may read)")
          ->envname("DAGD_NAMESPACE");
  app.add_option("--token", connection.token,
                 "Bearer token to authenticate with (visible in the process list: prefer "
                 "--token-file or DAGD_TOKEN)")
      ->envname("DAGD_TOKEN");
  app.add_option("-o,--output", output,
                 "Output format: table, wide (more columns), json or yaml (the API messages)")
      ->check(CLI::IsMember({"table", "wide", "json", "yaml"}))
      ->capture_default_str();
  std::string color = "auto";
  app.add_option("--color", color,
                 "Phases in color: auto (on a terminal, unless NO_COLOR is set), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
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
  apply->footer(Examples({"dagctl apply -f deploy.yaml --bundle playbooks/",
                          "dagctl apply -f a.yaml -f b.yaml -o json"}));

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
  std::vector<std::string> submit_labels;
  submit
      ->add_option("-l,--label", submit_labels,
                   "Label of the run, added to the spec's metadata.labels")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->check(Checked(ParseParameter));
  submit->add_flag("-w,--watch", submit_args.watch,
                   "Watch the run until it ends (as `dagctl watch`; the exit status is its "
                   "outcome)");
  submit->footer(Examples({"dagctl submit deploy -p env=prod -l ticket=ops-12",
                           "dagctl submit -f diamond.yaml --bundle playbooks/ --watch",
                           "dagctl submit deploy --request-id deploy-2024-05-01 -o json"}));
  submit->callback(on_run([&](Context& c) {
    if (submit_args.workflow.empty() == submit_args.file.empty()) {
      *c.err << "dagctl: submit needs a workflow NAME or -f FILE\n";
      return kExitUsage;
    }
    submit_args.parameters = *ParseParameters(submit_parameters);
    submit_args.labels = *ParseParameters(submit_labels);
    return Submit(c, submit_args);
  }));

  std::string watch_run;
  int64_t watch_from = 0;
  CLI::App* watch_cmd =
      app.add_subcommand("watch", "Follow a run until it ends: its node tree and progress");
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
  watch_cmd->footer(Examples(
      {"dagctl watch diamond-x7k2p", "dagctl watch diamond-x7k2p --ansible | tee run.log",
       "dagctl watch diamond-x7k2p -o json | jq .type",
       "On a terminal the node tree is redrawn in place with the progress (nodes done/total, "
       "elapsed);",
       "piped, each event is a line, each finished node adds a \"progress:\" line, and the final "
       "run follows.",
       "Exit status: 0 the run Succeeded, 1 it ended Failed or Error (or the watch failed), 2 "
       "usage error."}));

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
  std::vector<std::string> list_labels;
  runs_list
      ->add_option("-l,--label", list_labels,
                   "Only runs with this label: KEY=VALUE, KEY!=VALUE or KEY (repeatable: all must "
                   "hold)")
      ->type_name("SELECTOR")
      ->allow_extra_args(false);
  runs_list
      ->add_option("--sort", list_args.order_by,
                   "Order: created, finished or duration; a - prefix sorts descending (default "
                   "-created, newest first)")
      ->check(
          CLI::IsMember({"created", "-created", "finished", "-finished", "duration", "-duration"}));
  runs_list->add_option("--page-token", list_args.page_token,
                        "Continue after a previous page (its next_page_token)");
  runs_list->footer(Examples({"dagctl runs list --phase Failed --phase Error --since 24h",
                              "dagctl runs list --workflow deploy -l env=prod -o wide",
                              "dagctl runs list --since 2024-05-01T00:00:00Z --until 1h --all",
                              "dagctl runs list --sort -duration --limit 10 -o json"}));
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
    list_args.label_selector = absl::StrJoin(list_labels, ",");
    return ListRuns(c, list_args);
  }));
  std::string get_run;
  CLI::App* runs_get = runs->add_subcommand("get", "Show a run and its node tree");
  runs_get->add_option("run", get_run, "Run id")->required();
  runs_get->callback(on_run([&](Context& c) { return GetRun(c, get_run); }));
  runs_get->footer(Examples({"dagctl runs get diamond-x7k2p",
                             "dagctl runs get diamond-x7k2p -o wide   # template and runner too",
                             "dagctl runs get diamond-x7k2p -o json | jq '.nodes[].phase'"}));
  runs->footer(Examples({"dagctl runs list --phase Running", "dagctl runs get diamond-x7k2p"}));

  LogsArgs logs_args;
  CLI::App* logs = app.add_subcommand("logs", "Print a node's logs");
  logs->add_option("run", logs_args.run_id, "Run id")->required();
  logs->add_option("node", logs_args.node, "Node name or display name")->required();
  logs->add_flag("-f,--follow", logs_args.follow, "Keep streaming until the node ends");
  logs->add_option("--attempt", logs_args.attempt, "Only this attempt (0: all)")
      ->check(CLI::NonNegativeNumber);
  logs->add_flag("--prefix", logs_args.prefix, "Start each line with NODE#ATTEMPT:");
  logs->callback(on_run([&](Context& c) { return Logs(c, logs_args); }));
  logs->footer(Examples({"dagctl logs diamond-x7k2p b", "dagctl logs diamond-x7k2p b --attempt 2",
                         "dagctl logs diamond-x7k2p configure -f --prefix"}));

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
  events->footer(Examples({"dagctl events diamond-x7k2p", "dagctl events diamond-x7k2p b --changed",
                           "dagctl events diamond-x7k2p --host web1 --failed -o json",
                           "dagctl events diamond-x7k2p -f"}));

  AuditArgs audit_args;
  std::string audit_run, audit_workflow, audit_since, audit_until;
  CLI::App* audit = app.add_subcommand(
      "audit", "Who changed what: the audit log of every mutating call (needs the admin role)");
  audit->add_option("--principal", audit_args.principal, "Only calls of this principal");
  CLI::Option* audit_run_option =
      audit->add_option("--run", audit_run, "Only calls on this run (its submission included)");
  CLI::Option* audit_workflow_option =
      audit->add_option("--workflow", audit_workflow, "Only calls on this stored workflow");
  audit->add_option("--target", audit_args.target, "Only calls on this target (run/NAME, …)")
      ->excludes(audit_run_option)
      ->excludes(audit_workflow_option);
  audit_run_option->excludes(audit_workflow_option);
  audit->add_option("--method", audit_args.method, "Only calls of this RPC (e.g. SubmitRun)");
  audit->add_option("--since", audit_since, "At or after: a duration ago or RFC 3339")
      ->check(Checked(time_bound));
  audit->add_option("--until", audit_until, "Before: a duration ago or RFC 3339")
      ->check(Checked(time_bound));
  audit->add_flag("--failed", audit_args.failed_only, "Only calls that did not succeed");
  audit->add_option("--limit", audit_args.limit, "At most this many records (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  audit->callback(on_run([&](Context& c) {
    if (!audit_run.empty()) audit_args.target = "run/" + audit_run;
    if (!audit_workflow.empty()) audit_args.target = "workflow/" + audit_workflow;
    if (!audit_since.empty()) audit_args.since = *time_bound(audit_since);
    if (!audit_until.empty()) audit_args.until = *time_bound(audit_until);
    return Audit(c, audit_args);
  }));
  audit->footer(Examples({"dagctl audit --run deploy-x7k2p   # who submitted, stopped, retried it",
                          "dagctl audit --principal alice --since 24h",
                          "dagctl audit --failed --method SubmitRun -o wide"}));

  std::string end_run, end_message;
  for (const bool terminate : {false, true}) {
    CLI::App* end = app.add_subcommand(
        terminate ? "terminate" : "stop",
        terminate ? "End a run now, without exit handlers"
                  : "End a run; its exit handlers still run (terminate ends them too)");
    end->add_option("run", end_run, "Run id")->required();
    end->add_option("--message", end_message, "Recorded with the change");
    end->callback(
        on_run([&, terminate](Context& c) { return EndRun(c, end_run, end_message, terminate); }));
    end->footer(terminate ? Examples({"dagctl terminate diamond-x7k2p --message 'wrong inventory'"})
                          : Examples({"dagctl stop diamond-x7k2p --message 'maintenance window'"}));
  }

  ResumeArgs resume_args;
  CLI::App* resume = app.add_subcommand("resume", "Resume a run's suspended nodes (ResumeRun)");
  resume->add_option("run", resume_args.run_id, "Run id")->required();
  resume->add_option("--node", resume_args.node,
                     "Only this suspended node (name or display name; default: every one)");
  resume->add_option("--message", resume_args.message, "Recorded with the change");
  resume->callback(on_run([&](Context& c) { return Resume(c, resume_args); }));
  resume->footer(
      Examples({"dagctl resume release-x7k2p", "dagctl resume release-x7k2p --node approve"}));

  RetryArgs retry_args;
  CLI::App* retry = app.add_subcommand(
      "retry", "Run a finished run again from where it failed, under its own id (RetryRun)");
  retry->add_option("run", retry_args.run_id, "Run id")->required();
  retry
      ->add_option("--restart", retry_args.restart_nodes,
                   "Also run this succeeded node again, with what is under it (name or display "
                   "name; repeatable)")
      ->type_name("NODE")
      ->allow_extra_args(false);
  retry->add_option("--message", retry_args.message, "Recorded with the change");
  retry->add_flag("-w,--watch", retry_args.watch,
                  "Watch the run until it ends (the exit status is its outcome)");
  retry->callback(on_run([&](Context& c) { return Retry(c, retry_args); }));
  retry->footer(Examples(
      {"dagctl retry diamond-x7k2p --watch", "dagctl retry diamond-x7k2p --restart configure"}));

  ResubmitArgs resubmit_args;
  std::vector<std::string> resubmit_parameters;
  CLI::App* resubmit = app.add_subcommand(
      "resubmit", "Start a new run of a run's spec, bundle and parameters (ResubmitRun)");
  resubmit->add_option("run", resubmit_args.run_id, "Run id")->required();
  resubmit->add_flag("--memoized", resubmit_args.memoized,
                     "Start from the old run's succeeded nodes (the old run must have failed)");
  resubmit->add_option("-p,--parameter", resubmit_parameters, "Parameter, over the old run's")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false)
      ->check(Checked(ParseParameter));
  resubmit->add_flag("-w,--watch", resubmit_args.watch,
                     "Watch the new run until it ends (the exit status is its outcome)");
  resubmit->callback(on_run([&](Context& c) {
    resubmit_args.parameters = *ParseParameters(resubmit_parameters);
    return Resubmit(c, resubmit_args);
  }));
  resubmit->footer(Examples({"dagctl resubmit diamond-x7k2p -p env=staging",
                             "dagctl resubmit diamond-x7k2p --memoized --watch"}));

  SetNodeArgs set_args;
  std::vector<std::string> set_outputs;
  std::string set_phase;
  CLI::App* set = app.add_subcommand(
      "set", "Supply a suspended node's outputs, and optionally end it (SetNode, argo node set)");
  set->add_option("run", set_args.run_id, "Run id")->required();
  set->add_option("node", set_args.node, "The suspended node (name or display name)")->required();
  set->add_option("--output-parameter", set_outputs,
                  "Value of an output declared `valueFrom: {supplied: {}}`")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false)
      ->check(Checked(ParseParameter));
  set->add_option("--phase", set_phase,
                  "End the node: Succeeded (resume it with these outputs), Failed or Error")
      ->check(Checked(ParsePhase));
  set->add_option("--message", set_args.message, "Recorded with the change");
  set->callback(on_run([&](Context& c) {
    set_args.output_parameters = *ParseParameters(set_outputs);
    set_args.phase = set_phase.empty() ? v1::PHASE_UNSPECIFIED : *ParsePhase(set_phase);
    return SetNode(c, set_args);
  }));
  set->footer(
      Examples({"dagctl set release-x7k2p approve --output-parameter message='ship it'",
                "dagctl set release-x7k2p approve --output-parameter approve=YES --phase Succeeded",
                "dagctl set release-x7k2p approve --phase Failed --message 'not this week'"}));

  std::vector<std::string> lint_files;
  CLI::App* lint = app.add_subcommand("lint", "Check workflow files (LintWorkflow)");
  lint->add_option("files", lint_files, "Workflow YAML files")->required();
  lint->callback(on_run([&](Context& c) { return Lint(c, lint_files); }));
  lint->footer(Examples({"dagctl lint workflows/*.yaml", "dagctl lint deploy.yaml -o json"}));

  GraphArgs graph_args;
  CLI::App* graph =
      app.add_subcommand("graph", "Print a workflow's or a run's DAG as Graphviz DOT");
  graph->add_option("source", graph_args.source, "Workflow YAML file (- stdin), or run id")
      ->required();
  graph->add_option("--png", graph_args.png,
                    "Also render it to this PNG file with Graphviz's dot (apt-get install "
                    "graphviz)");
  graph->callback(on_run([&](Context& c) { return Graph(c, graph_args); }));
  graph->footer(Examples({"dagctl graph diamond.yaml | dot -Tsvg > diamond.svg",
                          "dagctl graph diamond-x7k2p --png run.png   # nodes colored by phase",
                          "dagctl graph diamond.yaml -o json"}));

  std::string completion_shell;
  CLI::App* completion = app.add_subcommand("completion", "Print a shell completion script");
  completion->add_option("shell", completion_shell, "The shell (bash)")
      ->required()
      ->check(CLI::IsMember({"bash"}));
  bool completion_requested = false;
  completion->callback([&completion_requested] { completion_requested = true; });
  completion->footer(
      Examples({"dagctl completion bash > /usr/share/bash-completion/completions/dagctl",
                "source <(dagctl completion bash)   # this shell only"}));

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
  export_argo->footer(Examples({"dagctl export argo diamond.yaml --bundle playbooks/ > argo.yaml",
                                "dagctl export argo diamond-x7k2p | kubectl create -f -"}));
  export_cmd->footer(Examples({"dagctl export argo diamond.yaml"}));

  CLI::App* workflows = app.add_subcommand("workflows", "Manage stored workflows");
  workflows->require_subcommand(1);
  workflows->add_subcommand("list", "List stored workflows (latest versions)")
      ->callback(on_run([](Context& c) { return ListWorkflows(c); }))
      ->footer(Examples({"dagctl workflows list", "dagctl workflows list -o yaml"}));
  workflows->footer(Examples({"dagctl workflows list", "dagctl workflows get deploy --version 2",
                              "dagctl workflows delete deploy"}));
  std::string workflow_name;
  int64_t workflow_version = 0;
  CLI::App* workflows_get = workflows->add_subcommand("get", "Show a stored workflow");
  workflows_get->add_option("name", workflow_name, "Workflow name")->required();
  workflows_get->add_option("--version", workflow_version, "Version (0: latest)")
      ->check(CLI::NonNegativeNumber);
  workflows_get->callback(
      on_run([&](Context& c) { return GetWorkflow(c, workflow_name, workflow_version); }));
  workflows_get->footer(
      Examples({"dagctl workflows get deploy", "dagctl workflows get deploy --version 2 -o json"}));
  CLI::App* workflows_delete = workflows->add_subcommand("delete", "Delete a stored workflow");
  workflows_delete->add_option("name", workflow_name, "Workflow name")->required();
  workflows_delete->callback(on_run([&](Context& c) { return DeleteWorkflow(c, workflow_name); }));
  workflows_delete->footer(Examples({"dagctl workflows delete deploy   # its runs are kept"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
  }
  if (completion_requested) {
    out << BashCompletion(app);
    return kExitOk;
  }

  // Settings neither a flag nor a variable gave come from the config file.
  auto config = ReadConfigFile(config_file, config_option->count() > 0);
  if (!config.ok()) {
    err << "dagctl: " << config.status().message() << "\n";
    return kExitUsage;
  }
  for (const auto& [key, value] : *config) {
    auto option = connection_options.find(key);
    if (option == connection_options.end() || option->second->count() > 0) continue;
    try {
      option->second->add_result(value);
      option->second->run_callback();
    } catch (const CLI::ParseError& e) {
      err << "dagctl: config file " << config_file << ": " << key << ": " << e.what() << "\n";
      return kExitUsage;
    }
  }
  auto client_options = ConnectionOptions(connection);
  if (!client_options.ok()) {
    err << "dagctl: " << client_options.status().message() << "\n";
    return kExitUsage;
  }
  client_options->timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(*ParseDuration(timeout));
  Client client(*client_options);
  Context context{&client, ToOutputFormat(output), &out, &err, watch, bundle_limits};
  context.namespace_name = namespace_name;
  context.terminal = &out == &std::cout && isatty(STDOUT_FILENO) == 1;
  context.color = UseColor(color, context.terminal);
  return action(context);
}

}  // namespace dagd::dagctl
