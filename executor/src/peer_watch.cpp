// Failure news between ranks through the rendezvous store (peer_watch.hpp).
#include "peer_watch.hpp"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "errors.hpp"

namespace paraplan::exec {

namespace {

const std::string kAbortCount = "paraplan/abort_n";  // who aborted first (add returns 1 to it alone)
const std::string kAbort = "paraplan/abort";         // its message
const std::string kAbortSeen = "paraplan/abort_seen";
const std::string kDone = "paraplan/done";

std::string beat_key(int rank) { return "paraplan/beat/" + std::to_string(rank); }

std::string as_string(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

std::string where(const LaunchEnv& env) { return env.master_addr + ":" + std::to_string(env.master_port); }

c10::intrusive_ptr<c10d::Store> connect(const LaunchEnv& env, bool serve, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = serve;
  so.numWorkers = env.world_size;
  so.waitWorkers = false;
  so.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
}

// Polls `done()` every 50 ms until it is true or `limit` has passed.
template <class Done>
void wait_until(Done done, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

void publish_abort(c10d::Store& store, const std::string& why) {
  if (store.add(kAbortCount, 1) == 1) store.set(kAbort, std::vector<uint8_t>(why.begin(), why.end()));
}

}  // namespace

PeerWatch::PeerWatch(const LaunchEnv& env, c10::intrusive_ptr<c10d::Store> store, OnAbort on_abort)
    : env_(env), store_(std::move(store)), on_abort_(std::move(on_abort)) {
  thread_ = std::thread([this] { run(); });
}

PeerWatch::~PeerWatch() { stop(); }

void PeerWatch::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void PeerWatch::run() {
  c10::intrusive_ptr<c10d::Store> own;
  std::string why;
  try {
    own = connect(env_, false, std::chrono::seconds(30));
    const std::string beat = beat_key(env_.rank);
    while (!stop_) {
      own->add(beat, 1);
      if (own->check({kAbort})) {
        why = as_string(own->get(kAbort));
        own->add(kAbortSeen, 1);
        break;
      }
      for (auto slept = std::chrono::milliseconds(0); slept < kPeriod && !stop_; slept += std::chrono::milliseconds(50))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const std::exception& e) {
    if (stop_) return;
    // Rank 0 serves the store unless torchrun's agent does: then losing the store is losing rank 0, said
    // in the words the main thread uses when a collective finds a peer gone ("lost rank N").
    why = (env_.agent_store ? "lost the rendezvous store at " + where(env_) + " (torchrun's agent serves it)"
                            : "lost rank 0, which serves the rendezvous store at " + where(env_)) +
          ": " + error_message(e);
  }
  if (stop_ || why.empty()) return;
  const std::string msg = "stopped because " + why;
  try {
    if (on_abort_) on_abort_(msg);
  } catch (const std::exception& e) {  // nothing thrown here may end the rank before it says why
    std::fprintf(stderr, "paraplan-worker: rank %d: %s\n", env_.rank, e.what());
  }
  std::fprintf(stderr, "paraplan-worker: rank %d: %s\n", env_.rank, msg.c_str());
  std::fflush(stderr);
  std::_Exit(1);  // the main thread may be blocked in a collective that will never finish
}

void PeerWatch::abort(const std::string& why) {
  stop();  // this rank reports its own failure; its watch must not end the process first
  try {
    publish_abort(*store_, why);
    store_->add(kAbortSeen, 1);
  } catch (const std::exception&) {
    // The store is gone too; the others learn it from that.
  }
}

std::vector<int> PeerWatch::silent_ranks() {
  std::vector<int> silent;
  try {
    std::map<int, int64_t> before;
    for (int r = 0; r < env_.world_size; ++r)
      if (r != env_.rank) before[r] = store_->add(beat_key(r), 0);
    std::this_thread::sleep_for(3 * kPeriod);
    for (const auto& [r, n] : before)
      if (store_->add(beat_key(r), 0) == n) silent.push_back(r);
  } catch (const std::exception&) {
    if (!serves_store()) silent.push_back(0);  // the store's host is gone
  }
  return silent;
}

void PeerWatch::finish(std::chrono::milliseconds limit) {
  stop();
  try {
    store_->add(kDone, 1);
    if (serves_store()) wait_until([&] { return store_->add(kDone, 0) >= env_.world_size; }, limit);
  } catch (const std::exception&) {
    // Nothing is left to coordinate with.
  }
}

void PeerWatch::linger_after_abort(int lost, std::chrono::milliseconds limit) {
  if (!serves_store()) return;
  try {
    wait_until([&] { return store_->add(kAbortSeen, 0) >= env_.world_size - lost; }, limit);
  } catch (const std::exception&) {
  }
}

void announce_abort(const LaunchEnv& env, const std::string& why, std::chrono::milliseconds connect_timeout) {
  const bool serve = env.rank == 0 && !env.agent_store;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = connect(env, serve, connect_timeout);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot reach the rendezvous store at " + where(env) + " to tell the other ranks: " +
                             error_message(e));
  }
  publish_abort(*store, why);
  store->add(kAbortSeen, 1);  // this rank knows; the host waits for the world's other ranks
  if (serve)
    wait_until([&] { return store->add(kAbortSeen, 0) >= env.world_size; }, std::chrono::seconds(10));
}

}  // namespace paraplan::exec
