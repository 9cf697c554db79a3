// Clock: the seam through which the scheduler reads wall-clock time, so that tests may pass a
// manual clock. Timers still run on the io_context's steady clock.
#ifndef DAGD_SCHEDULER_CLOCK_H_
#define DAGD_SCHEDULER_CLOCK_H_

#include <cstdint>

namespace dagd::scheduler {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch. Thread-safe.
  virtual int64_t NowMs() = 0;
};

// The real clock (std::chrono::system_clock).
Clock* SystemClock();

}  // namespace dagd::scheduler

#endif  // DAGD_SCHEDULER_CLOCK_H_
