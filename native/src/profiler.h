// Per-op compute time of a context's graph nodes (load option `profile`): the timing half of its eval callback.
#pragma once

#include "ggml.h"

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace bge {

// An eval callback that asks for every node makes the scheduler compute one node at a time: the time from
// the "ask" call to the "done" call is then that node's compute time.
class Profile {
  public:
    using Ops = std::map<std::string, std::pair<double, double>>;  // op -> (ms, nodes)

    // the eval callback's call for node `t` (ask: before it runs; else: it ran); true: every node is wanted
    bool node(const ggml_tensor * t, bool ask);
    // what was timed since the last take(), which it resets. Takes only `lock`, which a running decode holds
    // for one node's update at a time, so it never waits for the decode.
    Ops take();

  private:
    std::chrono::steady_clock::time_point start;  // the computing thread's only
    std::mutex lock;                              // guards `ops` alone
    Ops ops;
};

}  // namespace bge
