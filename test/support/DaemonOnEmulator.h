#pragma once

// The integration suites' world: the resctrl emulator, a private dbus-daemon with the real
// policy, and rdtmond on that bus against the emulator. A fixture derives from it (after
// ::testing::Test) and names them emu_, bus_ and daemon_; they go in reverse order.

#include "EmulatorMount.h"
#include "PrivateBus.h"
#include "RdtmondProcess.h"

#include <string>
#include <utility>

namespace rdtmon::test {

class DaemonOnEmulator {
protected:
    explicit DaemonOnEmulator(EmulatorOptions emulator = {}, std::string configJson = "{}")
        : emu_(emulator), bus_(),
          daemon_(bus_,
                  Rdtmond::Options{.resctrl = emu_.path(), .configJson = std::move(configJson)}) {}

    EmulatorMount emu_;
    PrivateBus bus_;
    Rdtmond daemon_;
};

} // namespace rdtmon::test
