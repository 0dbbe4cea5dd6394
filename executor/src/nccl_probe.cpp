// paraplan-nccl-probe: links and loads NCCL and the CUDA runtime without LibTorch, prints their
// versions and the visible devices. Built where LibTorch has no CUDA but the CUDA toolkit and NCCL
// are installed (this project's Debian machines), so that the NCCL side is linked and run here too;
// on a machine without a GPU it reports that and succeeds.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>

int main() {
  int nccl = 0;
  if (ncclGetVersion(&nccl) != ncclSuccess) {
    std::fprintf(stderr, "ncclGetVersion failed\n");
    return 1;
  }
  std::printf("NCCL %d (header %d)\n", nccl, NCCL_VERSION_CODE);
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  std::printf("CUDA runtime %d\n", runtime);
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess)
    std::printf("CUDA devices: none (%s)\n", cudaGetErrorString(e));
  else
    std::printf("CUDA devices: %d\n", devices);
  return nccl == NCCL_VERSION_CODE ? 0 : 2;  // the library loaded is the one compiled against
}
