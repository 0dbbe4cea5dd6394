#pragma once
// Failure news between the ranks of one run, through the rendezvous store (c10d TCPStore at
// MASTER_ADDR:MASTER_PORT). Internal: includes c10d.
//
// Without it a rank that stops is noticed only by the peers that are talking to it at that moment, and
// a rank that never starts (its launcher failed) only when the rendezvous times out (120 s by default).
// With it:
// - a rank that fails, or whose launcher failed before it could train (`paraplan-worker --abort`),
//   sets the key "paraplan/abort" to its message, and every other rank's watch thread sees it within
//   half a second and ends its process with that message;
// - each watch thread counts a heartbeat under "paraplan/beat/<rank>", so that a rank whose
//   collective broke can say which peer is gone (its heartbeat stopped) rather than which socket closed;
// - the store's host (rank 0 unless torchrun's agent serves it) waits for the others before it closes,
//   so that a normal end is never mistaken for a lost host, and a lost host is reported as such.
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "paraplan/exec/launch_env.hpp"

namespace paraplan::exec {

class PeerWatch {
 public:
  using OnAbort = std::function<void(const std::string& why)>;
  static constexpr std::chrono::milliseconds kPeriod{500};

  // `store` is this rank's connection (it may serve the store); the watch thread opens its own.
  // `on_abort` runs on the watch thread before it ends the process (exit code 1).
  PeerWatch(const LaunchEnv& env, c10::intrusive_ptr<c10d::Store> store, OnAbort on_abort);
  ~PeerWatch();  // stops the thread (a normal end or an error being reported: no abort)
  PeerWatch(const PeerWatch&) = delete;
  PeerWatch& operator=(const PeerWatch&) = delete;

  // Tells every rank to stop, with `why` ("rank R: message"), after stopping this rank's own watch (this
  // rank reports its failure itself). The first abort wins; later ones keep its message.
  void abort(const std::string& why);
  // Ranks whose heartbeat did not move over three periods (blocks for them).
  std::vector<int> silent_ranks();
  // The normal end: stops watching, says so, and on the store's host waits (at most `limit`) until every
  // rank has said so, so that nobody sees the store vanish while still watching it.
  void finish(std::chrono::milliseconds limit = std::chrono::seconds(30));
  // After abort() on the store's host: keeps the store up until every rank has seen the abort (each
  // counts itself under "paraplan/abort_seen"; at most `limit`), so that the news reaches them.
  // Ranks known to be gone (`lost`) are not waited for.
  void linger_after_abort(int lost = 0, std::chrono::milliseconds limit = std::chrono::seconds(10));

  bool serves_store() const { return env_.rank == 0 && !env_.agent_store; }

 private:
  void run();
  void stop();
  LaunchEnv env_;
  c10::intrusive_ptr<c10d::Store> store_;
  OnAbort on_abort_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// What `paraplan-worker --abort MESSAGE` does for a launcher that failed before its rank could start:
// joins the rendezvous (serving it on rank 0) within `connect_timeout`, publishes the abort, lingers on
// the store's host, and returns. Throws when the rendezvous cannot be reached.
void announce_abort(const LaunchEnv& env, const std::string& why, std::chrono::milliseconds connect_timeout);

}  // namespace paraplan::exec
