#pragma once
// Process groups that share one c10d store (rendezvous, run-wide values). Internal: includes c10d.
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <string>

#include "paraplan/exec/communicator.hpp"
#include "peer_watch.hpp"

namespace paraplan::exec {

class StoreGroups final : public ProcessGroups {
 public:
  // Starts watching the store for failure news (peer_watch.hpp) at once, before any group is built, so
  // that a rank that never comes stops the rendezvous within a second of its abort.
  StoreGroups(const LaunchEnv& env, c10::intrusive_ptr<c10d::Store> store, PeerWatch::OnAbort on_abort)
      : store_(std::move(store)), watch_(env, store_, std::move(on_abort)) {}
  void publish(const std::string& key, const std::string& value) override;
  std::string lookup(const std::string& key) override;
  void finish() override { watch_.finish(); }
  std::string report_failure(const std::string& error) override;
  const c10::intrusive_ptr<c10d::Store>& store() const { return store_; }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  PeerWatch watch_;
};

// The TCPStore at MASTER_ADDR:MASTER_PORT: rank 0 serves it unless torchrun's agent already does.
// Errors name the address and the timeout.
c10::intrusive_ptr<c10d::Store> connect_store(const LaunchEnv& env, std::chrono::milliseconds timeout);

}  // namespace paraplan::exec
