#pragma once

// A network namespace standing for one node of a test cluster, joined to this one by a veth
// pair: hostAddr on this side (interface hostIf), nodeAddr inside (eth0), one /24 between
// them, nothing routed further. A child that only waits holds the namespace; it goes, and
// the veth pair with it, when that child and every process started inside are gone, so
// nothing outlives the test even when it crashes (the child dies with this process).
// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and the ip command (iproute2).

#include "UniqueFd.h"

#include <string>
#include <sys/types.h>

namespace rdtmon::test {

class NetworkNamespace {
public:
    // Addresses from a range no real network uses (198.18.0.0/15, RFC 2544 benchmarking).
    NetworkNamespace(std::string hostIf, std::string hostAddr, std::string nodeAddr);
    ~NetworkNamespace();
    NetworkNamespace(const NetworkNamespace&) = delete;
    NetworkNamespace& operator=(const NetworkNamespace&) = delete;

    const std::string& hostAddress() const { return hostAddr_; }
    const std::string& nodeAddress() const { return nodeAddr_; }

    // While an Inside lives, the calling thread is in the namespace, and so is every process
    // it starts (fork inherits the thread's namespaces): a node's daemons are started so.
    class Inside {
    public:
        explicit Inside(const NetworkNamespace& ns);
        ~Inside();
        Inside(const Inside&) = delete;
        Inside& operator=(const Inside&) = delete;

    private:
        UniqueFd home_;
    };

private:
    std::string hostIf_;
    std::string hostAddr_;
    std::string nodeAddr_;
    pid_t holder_ = -1;
    UniqueFd ns_;
};

} // namespace rdtmon::test
