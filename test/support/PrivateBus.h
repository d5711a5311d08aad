#pragma once

// A private dbus-daemon for integration tests, carrying the real policy file. Stopped by its
// destructor.

#include "TempDir.h"

#include <string>
#include <sys/types.h>
#include <vector>

namespace rdtmon::test {

// A dbus-daemon on a unix socket in a temp dir. Its configuration is the system bus's
// default deny-by-default policy with the reply rules of system.conf, plus the real
// dbus/org.rdtmon1.conf. With Policy::Permissive it also lets everyone call every member
// of org.rdtmon1, so the code's own uid check can be tested.
class PrivateBus {
public:
    enum class Policy { Strict, Permissive };
    explicit PrivateBus(Policy policy = Policy::Strict,
                        const std::string& policyFile = RDTMON_SOURCE_DIR "/dbus/org.rdtmon1.conf");
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;

    const std::string& address() const { return address_; }
    std::string envEntry() const { return "DBUS_SYSTEM_BUS_ADDRESS=" + address_; }
    // busctl --address=... followed by args.
    std::vector<std::string> busctl(const std::vector<std::string>& args) const;
    bool nameHasOwner(const std::string& name) const;
    pid_t nameOwnerPid(const std::string& name) const; // -1 when nobody owns it
    std::string log() const; // dbus-daemon's stderr: policy rejections are logged there

private:
    TempDir dir_;
    std::string address_;
    pid_t pid_ = -1;
};

} // namespace rdtmon::test
