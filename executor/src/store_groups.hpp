#pragma once
// Process groups that share one c10d store (rendezvous, run-wide values). Internal: includes c10d.
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <string>

#include "paraplan/exec/communicator.hpp"

namespace paraplan::exec {

class StoreGroups final : public ProcessGroups {
 public:
  explicit StoreGroups(c10::intrusive_ptr<c10d::Store> store) : store_(std::move(store)) {}
  void publish(const std::string& key, const std::string& value) override;
  std::string lookup(const std::string& key) override;
  const c10::intrusive_ptr<c10d::Store>& store() const { return store_; }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
};

// The TCPStore at MASTER_ADDR:MASTER_PORT: rank 0 serves it unless torchrun's agent already does.
// Errors name the address and the timeout.
c10::intrusive_ptr<c10d::Store> connect_store(const LaunchEnv& env, std::chrono::milliseconds timeout);

}  // namespace paraplan::exec
