// The rendezvous port for local worker processes (local_port.hpp).
#include "paraplan/exec/local_port.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>

namespace paraplan::exec {

namespace {

// Binds 127.0.0.1:port (0: the kernel's choice) and returns the port bound, or 0 when it is taken.
int try_bind(int port) {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof a;
  const bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(s);
  return ok ? ntohs(a.sin_port) : 0;
}

}  // namespace

int free_local_port() {
  int eph_lo = 32768, eph_hi = 60999;  // Linux's default ephemeral range
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> eph_lo >> eph_hi;
  constexpr int kLowest = 10000, kRoom = 1000;  // above the well-known and most registered services' ports
  int lo = kLowest, hi = eph_lo - 1;
  if (hi - lo < kRoom) {
    lo = eph_hi + 1;
    hi = 65535;
  }
  if (hi - lo >= kRoom) {
    std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()) ^
                     static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::uniform_int_distribution<int> pick(lo, hi);
    for (int attempt = 0; attempt < 100; ++attempt)
      if (const int port = try_bind(pick(rng))) return port;
  }
  if (const int port = try_bind(0)) return port;  // no room outside the ephemeral range, or all taken
  throw std::runtime_error(std::string("cannot find a free port on 127.0.0.1: ") + std::strerror(errno));
}

}  // namespace paraplan::exec
