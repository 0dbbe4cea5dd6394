#include "paraplan/exec/launch_env.hpp"

#include <cstdlib>
#include <string>
#include <vector>

namespace paraplan::exec {

namespace {

int parse_int(const EnvLookup& get, const char* name, int lo, int hi) {
  const char* v = get(name);
  if (!v || !*v) throw LaunchEnvError(std::string(name) + " is not set (torchrun/srun launches set RANK, WORLD_SIZE, "
                                                          "LOCAL_RANK, MASTER_ADDR and MASTER_PORT together)");
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw LaunchEnvError(std::string(name) + " = \"" + v + "\": must be an integer in [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "]");
  return static_cast<int>(x);
}

}  // namespace

std::optional<LaunchEnv> launch_env_from(const EnvLookup& get) {
  if (!get("RANK") && !get("WORLD_SIZE")) return std::nullopt;
  LaunchEnv e;
  e.world_size = parse_int(get, "WORLD_SIZE", 1, 1 << 20);
  e.rank = parse_int(get, "RANK", 0, e.world_size - 1);
  e.local_rank = get("LOCAL_RANK") ? parse_int(get, "LOCAL_RANK", 0, e.world_size - 1) : 0;
  e.local_world_size = get("LOCAL_WORLD_SIZE") ? parse_int(get, "LOCAL_WORLD_SIZE", 1, e.world_size) : 1;
  e.local_world_known = get("LOCAL_WORLD_SIZE") != nullptr;
  const char* addr = get("MASTER_ADDR");
  if (!addr || !*addr) throw LaunchEnvError("MASTER_ADDR is not set (the host of rank 0's store)");
  e.master_addr = addr;
  e.master_port = parse_int(get, "MASTER_PORT", 1, 65535);
  const char* agent = get("TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = agent && (std::string(agent) == "True" || std::string(agent) == "1");
  return e;
}

std::optional<LaunchEnv> launch_env() {
  return launch_env_from([](const char* n) { return std::getenv(n); });
}

}  // namespace paraplan::exec
