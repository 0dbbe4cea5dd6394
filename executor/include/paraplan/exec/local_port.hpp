#pragma once
// A TCP port on 127.0.0.1 for a rendezvous store that several local processes are about to share.

namespace paraplan::exec {

// A port that nothing on 127.0.0.1 listens on now (checked by binding it), drawn at random below the
// kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range; above it when there is no room
// below). Not the kernel's own choice for port 0: that is a port of the ephemeral range, which outgoing
// connections also take their source ports from, and the kernel may hand a port just released to the
// next caller — two jobs started together under `ctest -j2` (the fault test's two ranks and the LeNet
// demo's four workers) got the same port, and each job's workers joined the other's store: both failed
// with "Connection closed by peer". Two jobs drawing from ports 10000-32767 (22,768 under the default
// range) pick the same one about once in 22,768.
// Throws std::runtime_error when no port can be bound.
int free_local_port();

}  // namespace paraplan::exec
