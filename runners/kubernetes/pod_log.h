// PodLogDemux: splits the log of an ansible pod (stdout and stderr merged, as Kubernetes serves
// it) back into console output and dagd's callback events. Event lines start with
// kEventLinePrefix (runners/kubernetes/job_spec.h); the plugin writes a newline before each so
// that an event never continues a line of Ansible's, and that newline is dropped here when it
// made an empty line. Everything else is output, passed on as it arrives.
//
// Fed chunk by chunk in order (any split). Not thread-safe; one per attempt.
#ifndef DAGD_RUNNERS_KUBERNETES_POD_LOG_H_
#define DAGD_RUNNERS_KUBERNETES_POD_LOG_H_

#include <functional>
#include <string>
#include <string_view>

namespace dagd::runners::kubernetes {

class PodLogDemux {
 public:
  // `on_output` gets console text (whole lines, the last one possibly without its newline only
  // at Finish()); `on_event` gets one event's JSON, without prefix or newline.
  PodLogDemux(std::function<void(std::string_view)> on_output,
              std::function<void(std::string_view)> on_event);

  void Feed(std::string_view data);
  // The end of the log: delivers what is held back (an unterminated last line).
  void Finish();

 private:
  void OnLine(std::string_view line, bool terminated);

  std::function<void(std::string_view)> on_output_;
  std::function<void(std::string_view)> on_event_;
  std::string partial_;           // the current line so far
  bool held_empty_line_ = false;  // an empty line that may be the plugin's separator
};

}  // namespace dagd::runners::kubernetes

#endif  // DAGD_RUNNERS_KUBERNETES_POD_LOG_H_
