// The rendezvous store shared by the gloo and NCCL backends: c10d's TCPStore at MASTER_ADDR:MASTER_PORT.
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <stdexcept>
#include <string>

#include "errors.hpp"
#include "store_groups.hpp"

namespace paraplan::exec {

c10::intrusive_ptr<c10d::Store> connect_store(const LaunchEnv& env, std::chrono::milliseconds timeout) {
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0 && !env.agent_store;
    so.numWorkers = env.world_size;
    so.waitWorkers = false;
    so.timeout = timeout;
    return c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(env.rank) + ": cannot reach the rendezvous store at " +
                             env.master_addr + ":" + std::to_string(env.master_port) + " (MASTER_ADDR, MASTER_PORT) within " +
                             std::to_string(timeout.count() / 1000) + " s: " + error_message(e));
  }
}

std::string StoreGroups::lookup(const std::string& key) {
  const std::vector<uint8_t> v = store_->get("paraplan/" + key);
  return std::string(v.begin(), v.end());
}

std::string StoreGroups::report_failure(const std::string& error) {
  const std::string mine = "rank " + std::to_string(rank) + ": " + error;
  // Did a peer abort first? Then this error is only its consequence (a closed connection).
  try {
    if (store_->check({"paraplan/abort"})) {
      const std::vector<uint8_t> v = store_->get("paraplan/abort");
      watch_.abort(mine);  // counts this rank as informed; the first message stays
      watch_.linger_after_abort();
      return "stopped because " + std::string(v.begin(), v.end());
    }
  } catch (const std::exception&) {
    // The store is gone with its host; silent_ranks says so below.
  }
  const std::vector<int> silent = watch_.silent_ranks();
  std::string why = mine;
  if (!silent.empty()) {
    std::string list;
    for (int r : silent) list += (list.empty() ? "" : ", ") + std::to_string(r);
    why = "rank " + std::to_string(rank) + ": lost rank " + list + " (no heartbeat through the rendezvous store for " +
          std::to_string(3 * PeerWatch::kPeriod.count()) + " ms): " + error;
  }
  watch_.abort(why);
  watch_.linger_after_abort(static_cast<int>(silent.size()));
  return why;
}

void StoreGroups::publish(const std::string& key, const std::string& value) {
  store_->set("paraplan/" + key, std::vector<uint8_t>(value.begin(), value.end()));
}

}  // namespace paraplan::exec
