#pragma once

// The unit suites' GroupManager over the emulator, with its registry in a state file, wired
// as rdtmond wires them. reopenManager is what a restart of rdtmond does to them.

#include "EmulatorMount.h"
#include "GroupManager.h"
#include "GroupRegistry.h"

#include <memory>
#include <string>

namespace rdtmon::test {

// Drops the manager, loads a fresh registry from stateFile and starts a new manager over
// it with these events and clock.
void reopenManager(std::unique_ptr<GroupManager>& mgr, std::unique_ptr<GroupRegistry>& registry,
                   const std::string& stateFile, GroupManager::Opener opener,
                   GroupManager::Events events, GroupManager::Clock clock = {});

// Opens the emulator's resctrl, or says why not when the emulator has stopped.
GroupManager::Opener emulatorOpener(const EmulatorMount& emu);

} // namespace rdtmon::test
