// AnsibleOutputScanner: picks the failing task out of ansible-playbook's stdout (default
// callback, no colour), so that a Failed attempt says which task failed and why.
//
// Fed chunk by chunk as output arrives; keeps at most one line prefix in memory.
// Not thread-safe; owned by one attempt.
#ifndef DAGD_RUNNERS_LOCAL_ANSIBLE_OUTPUT_H_
#define DAGD_RUNNERS_LOCAL_ANSIBLE_OUTPUT_H_

#include <string>
#include <string_view>

namespace dagd::runners::local {

class AnsibleOutputScanner {
 public:
  // Consumes the next piece of stdout (any split, lines may span calls).
  void Feed(std::string_view data);

  // The last failure seen: `task "NAME": fatal: [host]: FAILED! => {…}` (shortened), or empty.
  const std::string& failure() const { return failure_; }

 private:
  void OnLine(std::string_view line);

  std::string line_;  // the current line so far, capped
  std::string task_;  // name of the task (or handler) running
  std::string failure_;
};

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_ANSIBLE_OUTPUT_H_
