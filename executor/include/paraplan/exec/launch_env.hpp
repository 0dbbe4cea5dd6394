#pragma once
// The torchrun / Slurm contract: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT
// (torch.distributed "Environment variable initialization"; torchrun sets all of them, and
// LOCAL_WORLD_SIZE). Under srun the same variables are exported by the job script from SLURM_PROCID,
// SLURM_NTASKS and SLURM_LOCALID. No LibTorch.
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace paraplan::exec {

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  bool local_world_known = false;  // LOCAL_WORLD_SIZE was set (else 1 stands for "unknown")
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // torchrun >= 2.1 (TORCHELASTIC_USE_AGENT_STORE=True) already serves the TCPStore at MASTER_PORT:
  // every worker then connects as a client, rank 0 included.
  bool agent_store = false;
};

class LaunchEnvError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using EnvLookup = std::function<const char*(const char*)>;  // getenv by default

// nullopt when neither RANK nor WORLD_SIZE is set (a local launch); otherwise every variable must be
// present and well formed, and the error names the variable, its value and the rule.
std::optional<LaunchEnv> launch_env_from(const EnvLookup& get);
std::optional<LaunchEnv> launch_env();

}  // namespace paraplan::exec
