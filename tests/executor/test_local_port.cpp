// The rendezvous port of local workers (local_port.hpp): outside the kernel's ephemeral range, where
// bind(0) would have drawn it and where another job's just-released port or an outgoing connection's
// source port can be, and free when returned.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "paraplan/exec/local_port.hpp"

TEST(LocalPort, DrawnOutsideTheEphemeralRangeAndFree) {
  int lo = 32768, hi = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> lo >> hi;
  if (lo - 10000 < 1000 && 65535 - hi < 1000) GTEST_SKIP() << "no room outside the ephemeral range " << lo << "-" << hi;
  for (int i = 0; i < 20; ++i) {
    const int port = paraplan::exec::free_local_port();
    EXPECT_TRUE((port >= 10000 && port < lo) || port > hi) << port << " in the ephemeral range " << lo << "-" << hi;
    // Free: a listener can take it (what rank 0's store does next).
    const int s = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(s, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << port;
    EXPECT_EQ(listen(s, 1), 0) << port;
    close(s);
  }
}
