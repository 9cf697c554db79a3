// AnsibleOutputScanner: reads ansible-playbook's stdout and stderr (default callback, no colour)
// and, once the process has exited, classifies the outcome (local_runner.h lists the phases):
// which task failed on which host and why, which hosts were unreachable, or Ansible's own
// ERROR! text.
//
// Fed chunk by chunk as output arrives; keeps at most one line prefix per stream in memory.
// Not thread-safe; owned by one attempt.
#ifndef DAGD_RUNNERS_LOCAL_ANSIBLE_OUTPUT_H_
#define DAGD_RUNNERS_LOCAL_ANSIBLE_OUTPUT_H_

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/run_state.h"

namespace dagd::runners::local {

class AnsibleOutputScanner {
 public:
  // Consumes the next piece of stdout / stderr (any split, lines may span calls).
  void Feed(std::string_view data) { FeedStdout(data); }
  void FeedStdout(std::string_view data);
  void FeedStderr(std::string_view data);

  // One line from dagd's callback plugin (runners/local/ansible/dagd_events.py). Only the final
  // "stats" event is looked at: its set_stats data is kept for custom_stats(). Garbage is ignored.
  void FeedEvent(std::string_view json_line);

  // What the playbook set with set_stats for the whole run (not `per_host`), as a JSON object:
  // {} if nothing was set or no stats event arrived.
  const nlohmann::json& custom_stats() const { return custom_stats_; }

  // The last task failure seen: `task "NAME" failed on HOST: MSG` (shortened), or empty.
  const std::string& failure() const { return failure_; }

  // The outcome of an ansible-playbook that exited with `exit_code` != 0 (ansible-core 2.14):
  //   unreachable hosts seen (exit 4)        → Error, `host H unreachable: MSG`
  //   a failed task seen (exit 2)            → Failed, `task "T" failed on H: MSG`
  //   an ERROR! message (exit 1, 4 parser, 5 options, 250 crash)
  //                                          → Error, `playbook error: ANSIBLE'S TEXT`
  //                                            (`inventory error: WHY` when no inventory parsed)
  //   a command-line usage error (exit 2)    → Error, `ansible-playbook rejected its options: …`
  //   anything else                          → exit 2: Failed, else Error; "exit code N".
  // Only phase and message are set.
  engine::AttemptResult Classify(int exit_code) const;

 private:
  void OnStdoutLine(std::string_view line);
  void OnStderrLine(std::string_view line);
  void OnResult(const std::string& host, bool unreachable, std::string_view json);

  std::string stdout_line_;  // the current line so far, capped
  std::string stderr_line_;
  std::string task_;  // name of the task (or handler) running
  std::string failure_;
  // A failed or unreachable result whose JSON spans lines (verbosity 3 and up).
  bool collecting_ = false;
  std::string pending_host_;
  bool pending_unreachable_ = false;
  std::string pending_json_;
  std::vector<std::string> unreachable_hosts_;
  std::string unreachable_message_;  // of the first unreachable host
  std::string error_;                // "ERROR! …" from stderr and the lines that follow it
  int error_lines_ = 0;              // lines appended to error_; -1 once it is complete
  std::string usage_error_;          // "ansible-playbook: error: …"
  std::string inventory_warning_;    // "Failed to parse SOURCE with PLUGIN plugin: WHY"
  bool collecting_inventory_warning_ = false;
  nlohmann::json custom_stats_ = nlohmann::json::object();
};

// The name of the first variable a play of `playbook_yaml` would prompt for (vars_prompt
// without a default) that is not in `answered` (the extra vars); empty if none or if the text is
// not YAML (Ansible reports that itself). Playbooks it imports (`import_playbook: FILE`, a path
// without Jinja2) are read relative to `playbook_dir` and looked at too, 8 levels deep at most;
// an import that cannot be read is left to Ansible.
std::string UnansweredPrompt(const std::string& playbook_yaml, const std::string& playbook_dir,
                             const std::set<std::string>& answered);

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_ANSIBLE_OUTPUT_H_
